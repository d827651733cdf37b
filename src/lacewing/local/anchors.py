"""Trust-anchor rotation with overlap for a local cluster: the three steps, on its files.

A local cluster keeps its identity material in `<state>/identity/` (see `controlplane.py`):
`ca-bundle.crt` (the trust bundle every proxy and controller watches), `anchor/tls.key` (the
current anchor's key), `issuer/tls.crt` + `tls.key`. Rotation is the Linkerd procedure
(docs/identity.md), one step per call, each file replaced by a rename so that no reader ever
sees it half-written:

    add_anchor(dir)      a new anchor is generated and appended to the bundle (old + new); its
                         key waits in `anchor/next.key`
    resign_issuer(dir)   a new issuer signed by the new anchor replaces the issuer files; the
                         new anchor's key becomes `anchor/tls.key`
    remove_old(dir)      the bundle becomes the new anchor only

Between the steps the user waits until every proxy has taken the previous one (the proxies'
`identity_trust_anchors` gauge, and `identity_cert_refresh_count` after the issuer). Each
step checks that the previous one was done, and says in one line what to do if not.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from lacewing.errors import CertificateError
from lacewing.tls.pem import parse_certificates, parse_private_key
from lacewing.tls.pki import CertifiedKey, generate_issuer, generate_trust_anchor

__all__ = ["add_anchor", "bundle_of", "remove_old", "resign_issuer"]

TRUST_DOMAIN = "cluster.local"


def _replace(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.chmod(mode)
    tmp.rename(path)


def _pem(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM).decode()


def bundle_of(directory: Path) -> list[x509.Certificate]:
    path = directory / "ca-bundle.crt"
    return parse_certificates(path.read_bytes(), str(path))


def add_anchor(directory: Path) -> x509.Certificate:
    """Step 1: a new anchor joins the bundle. Returns it."""
    anchors = bundle_of(directory)
    if len(anchors) != 1 or (directory / "anchor" / "next.key").exists():
        raise CertificateError(
            f"the bundle in {directory} already holds {len(anchors)} anchors",
            hint="a rotation is under way: continue it with the issuer step, then remove",
        )
    new = generate_trust_anchor(TRUST_DOMAIN)
    _replace(directory / "anchor" / "next.key", new.key_pem, 0o600)
    _replace(directory / "ca-bundle.crt", _pem(anchors[0]) + new.cert_pem, 0o644)
    return new.certificate


def resign_issuer(directory: Path) -> x509.Certificate:
    """Step 2: a new issuer signed by the new anchor. Returns the issuer's certificate."""
    anchors, next_key = bundle_of(directory), directory / "anchor" / "next.key"
    if len(anchors) != 2 or not next_key.exists():
        raise CertificateError(
            "no new anchor in the bundle yet", hint="run the add step first, and wait for it"
        )
    anchor = CertifiedKey(anchors[1], parse_private_key(next_key.read_bytes(), str(next_key)))
    issuer = generate_issuer(anchor, TRUST_DOMAIN)
    _replace(directory / "issuer" / "tls.key", issuer.key_pem, 0o600)
    _replace(directory / "issuer" / "tls.crt", issuer.cert_pem, 0o600)
    next_key.rename(directory / "anchor" / "tls.key")
    return issuer.certificate


def remove_old(directory: Path) -> x509.Certificate:
    """Step 3: the bundle becomes the new anchor only. Returns it."""
    anchors = bundle_of(directory)
    issuer = x509.load_pem_x509_certificate((directory / "issuer" / "tls.crt").read_bytes())
    if len(anchors) != 2 or (directory / "anchor" / "next.key").exists():
        raise CertificateError(
            "the bundle holds no old anchor to remove, or the issuer step is not done",
            hint="the order is: add, issuer, remove",
        )
    if issuer.issuer != anchors[1].subject or not _signed_by(issuer, anchors[1]):
        raise CertificateError("the issuer is not signed by the new anchor: run the issuer step")
    _replace(directory / "ca-bundle.crt", _pem(anchors[1]), 0o644)
    return anchors[1]


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
