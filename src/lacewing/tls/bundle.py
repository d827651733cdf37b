"""The trust bundle (the trust anchors' PEM), reloaded from its file when the file changes.

Trust-anchor rotation (docs/identity.md) changes the bundle three times without a restart:
old anchor -> old + new -> new only. Everything that verifies a mesh peer reads the bundle
through a `TrustBundle`: the proxy's TLS contexts (`TlsHolder` rebuilds them on a new
generation), its identity client, and the controllers' serving contexts.

`TrustBundle.from_text(text)` takes PEM text (then it never changes) or a path. With a path,
`pem()` stats the file at most once per `interval` seconds (the clock is injectable) and
rereads it when its (mtime, size, inode) changed: kubelet updates a mounted ConfigMap by
swapping a `..data` symlink, and the local runtime renames a new file into place, so either
way the stat changes and the file is never seen half-written. A new bundle that does not
parse as at least one PEM certificate is refused: the last good one stays in use and the
reason is logged once. `generation` counts the bundles loaded, so a user of the bundle can
rebuild what it derived from it only when it changed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from lacewing.errors import CertificateError, ConfigError

__all__ = ["TrustBundle", "parse_bundle"]

log = logging.getLogger(__name__)

_Stamp = tuple[int, int, int]
DEFAULT_INTERVAL = 1.0  # seconds between two stats of the bundle file


def parse_bundle(pem: str, source: str) -> list[x509.Certificate]:
    try:
        anchors = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise CertificateError(
            f"{source}: not a PEM bundle of certificates",
            hint="the trust anchors are one or more PEM certificates (ca-bundle.crt)",
        ) from None
    return anchors


class TrustBundle:
    def __init__(
        self,
        pem: str,
        path: Path | None = None,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path, self.interval, self.clock = path, interval, clock
        self._pem = pem
        # (empty text without a file: no anchors, every peer is refused; used before config)
        empty = not pem.strip() and path is None
        self._anchors = [] if empty else parse_bundle(pem, str(path) if path else "trust anchors")
        self._stamp = self._stat() if path is not None else None
        self._checked = clock()
        self._last_error = ""
        self.generation = 1

    @classmethod
    def from_text(cls, text: str, **kwargs: object) -> TrustBundle:
        """PEM text as it is, or the path of a PEM file (then watched)."""
        if "-----BEGIN" in text:
            return cls(text)
        return cls.from_file(Path(text), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> TrustBundle:
        try:
            pem = path.read_text()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the trust anchors {path}: {exc.strerror}",
                hint="give the trust anchors as PEM text or as the path of a PEM file",
            ) from None
        return cls(pem, path, interval=interval, clock=clock)

    def _stat(self) -> _Stamp | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def pem(self) -> str:
        """The current bundle, reloaded first if its file changed."""
        self.refresh()
        return self._pem

    def anchors(self) -> list[x509.Certificate]:
        self.refresh()
        return list(self._anchors)

    def refresh(self, *, force: bool = False) -> bool:
        """Reload if the file changed (at most once per interval); True if it did."""
        if self.path is None:
            return False
        now = self.clock()
        if not force and now - self._checked < self.interval:
            return False
        self._checked = now
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            if stamp is None:
                self._refuse(f"cannot stat {self.path}; keeping the previous trust anchors")
            return False
        self._stamp = stamp
        try:
            pem = self.path.read_text()
            anchors = parse_bundle(pem, str(self.path))
        except (OSError, CertificateError) as exc:
            self._refuse(f"{exc}; keeping the previous trust anchors")
            return False
        if pem == self._pem:
            return False
        self._pem, self._anchors = pem, anchors
        self.generation += 1
        self._last_error = ""
        log.info("loaded trust anchors from %s: %d certificate(s)", self.path, len(anchors))
        return True

    def _refuse(self, error: str) -> None:
        if error != self._last_error:
            log.warning("%s", error)
            self._last_error = error
