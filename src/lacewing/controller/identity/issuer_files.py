"""The issuer as files on disk, reloaded when they change (cert-manager rotation, no restart).

The issuer Secret is mounted as a directory holding `tls.crt` and `tls.key` (kubelet updates
a mounted Secret by swapping a `..data` symlink, so both files change together). Every call
to `IssuerFiles.current()` stats both files (two syscalls: cheap next to an ECDSA
signature) and reloads when either's (mtime, size, inode) changed since the last load.

A reload that fails (a half-written pair, a key that does not match, an issuer not signed by
a trust anchor) keeps serving with the last good issuer and logs why; only when there never
was a good one does `current()` raise CertificateError, which the service answers with 503.
The issuer must be a CA and, if trust anchors are given, directly signed by one of them
(or be one); the checks are `lacewing.tls.validate`'s, the same ones `install` and `check` use.

With a `bundle` (the trust-anchors file as a `TrustBundle`) the anchors are reloaded when
that file changes, and the issuer is checked again against them: during an anchor rotation
the bundle gains the new anchor first, then the issuer signed by it is accepted.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from lacewing.errors import CertificateError
from lacewing.tls.bundle import TrustBundle
from lacewing.tls.issuance import Issuer
from lacewing.tls.validate import check_is_ca, check_issued_by

__all__ = ["IssuerFiles", "load_trust_anchors"]

log = logging.getLogger(__name__)

_Stamp = tuple[tuple[int, int, int], tuple[int, int, int]]


def load_trust_anchors(pem: bytes, *, source: str = "trust anchors") -> list[x509.Certificate]:
    try:
        anchors = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise CertificateError(
            f"{source}: not a PEM bundle of certificates",
            hint="pass the trust anchor certificate(s) as PEM (ca.crt)",
        ) from None
    return anchors


@dataclass
class IssuerFiles:
    directory: Path
    trust_anchors: list[x509.Certificate] = field(default_factory=list)
    bundle: TrustBundle | None = None  # if given, the anchors follow it (anchor rotation)
    loads: int = 0
    _bundle_generation: int = 0
    _stamp: _Stamp | None = None
    _issuer: Issuer | None = None
    _last_error: str = ""

    @property
    def cert_path(self) -> Path:
        return self.directory / "tls.crt"

    @property
    def key_path(self) -> Path:
        return self.directory / "tls.key"

    def _stat(self) -> _Stamp:
        def one(p: Path) -> tuple[int, int, int]:
            st = os.stat(p)
            return (st.st_mtime_ns, st.st_size, st.st_ino)

        return one(self.cert_path), one(self.key_path)

    def _follow_bundle(self) -> None:
        if self.bundle is None:
            return
        self.bundle.refresh()
        if self.bundle.generation != self._bundle_generation:
            self.trust_anchors = self.bundle.anchors()
            self._bundle_generation = self.bundle.generation
            self._stamp = None  # check the issuer again against the new anchors

    def current(self) -> Issuer:
        self._follow_bundle()
        try:
            stamp = self._stat()
        except OSError as exc:
            return self._keep(f"cannot read the issuer files in {self.directory}: {exc.strerror}")
        if stamp != self._stamp or self._issuer is None:
            try:
                self._issuer = self._load()
            except (OSError, CertificateError) as exc:
                self._stamp = stamp  # do not retry a broken pair on every request
                return self._keep(str(exc))
            self._stamp = stamp
            self.loads += 1
            self._last_error = ""
            log.info("loaded issuer %s", self._issuer.certificate.subject.rfc4514_string())
        return self._issuer

    def _keep(self, error: str) -> Issuer:
        if self._issuer is None:  # nothing to fall back to: the caller reports it
            raise CertificateError(
                error, hint=f"mount the issuer Secret (tls.crt, tls.key) at {self.directory}"
            )
        if error != self._last_error:
            log.warning("issuer reload failed, still using the previous issuer: %s", error)
            self._last_error = error
        return self._issuer

    def _load(self) -> Issuer:
        issuer = Issuer.from_pem(
            self.cert_path.read_bytes(), self.key_path.read_bytes(), source=str(self.directory)
        )
        check_is_ca(issuer.certificate)
        if self.trust_anchors and issuer.certificate not in self.trust_anchors:
            check_issued_by(issuer.certificate, self.trust_anchors)
        return issuer
