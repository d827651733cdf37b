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
rebuild what it derived from it only when it changed. `cryptography` is imported when a
bundle is first parsed, not with this module (the proxy's start-up footprint).
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lacewing.errors import CertificateError, ConfigError

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["TrustBundle", "check_bundle", "parse_bundle"]

log = logging.getLogger(__name__)

_Stamp = tuple[int, int, int]
DEFAULT_INTERVAL = 1.0  # seconds between two stats of the bundle file


def parse_bundle(pem: str, source: str) -> list[x509.Certificate]:
    from cryptography import x509  # (imported on use: the proxy starts without it)

    try:
        anchors = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise _not_pem(source) from None
    return anchors


def _not_pem(source: str) -> CertificateError:
    return CertificateError(
        f"{source}: not a PEM bundle of certificates",
        hint="the trust anchors are one or more PEM certificates (ca-bundle.crt)",
    )


def check_bundle(pem: str, source: str) -> int:
    """How many certificates `pem` holds, checked by OpenSSL (no `cryptography` import)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise _not_pem(source) from None
    count = int(context.cert_store_stats()["x509"])
    if count == 0:
        raise _not_pem(source)
    return count


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
        self.count = 0 if empty else check_bundle(pem, str(path) if path else "trust anchors")
        self._anchors: list[x509.Certificate] | None = None  # parsed when first asked for
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
        """The certificates (parsed with `cryptography`: for the controllers)."""
        self.refresh()
        if self._anchors is None:
            self._anchors = parse_bundle(self._pem, str(self.path or "trust anchors"))
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
            count = check_bundle(pem, str(self.path))
        except (OSError, CertificateError) as exc:
            self._refuse(f"{exc}; keeping the previous trust anchors")
            return False
        if pem == self._pem:
            return False
        self._pem, self.count, self._anchors = pem, count, None
        self.generation += 1
        self._last_error = ""
        log.info("loaded trust anchors from %s: %d certificate(s)", self.path, count)
        return True

    def _refuse(self, error: str) -> None:
        if error != self._last_error:
            log.warning("%s", error)
            self._last_error = error
