"""The proxy's key, its CSR, and TLS contexts built from them without touching a disk.

The private key is an ECDSA P-256 key generated in the process (`new_private_key`) and
never written anywhere. Python's `SSLContext.load_cert_chain` only reads files, so
`load_chain_in_memory` hands it an anonymous memory file (`memfd_create`, reached as
/proc/self/fd/N): the PEM lives in RAM only, is unlinked from birth, and is closed right after
OpenSSL has read it.

`Credentials` is one issued certificate with its key; `server_context` and `client_context`
turn it into the two mutual-TLS contexts of a proxy:

- server (inbound): presents the leaf + chain, requires a client certificate that chains to a
  trust anchor (the client's identity is then read from it, see `verify.py`);
- client (outbound): presents the same leaf, verifies the server against the trust anchors
  and checks its DNS SAN against the `server_hostname` the caller passes, which must be the
  peer's expected identity name (that is how "wrong identity" fails the handshake).

Both speak TLS 1.3 only (every peer is a lacewing proxy) and offer the given ALPN protocols.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lacewing.core.identity import Identity
from lacewing.errors import CertificateError
from lacewing.tls.issuance import identity_subject, san_is_critical

__all__ = [
    "Credentials",
    "client_context",
    "load_chain_in_memory",
    "make_csr",
    "new_private_key",
    "server_context",
]


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key: ec.EllipticCurvePrivateKey, identity: Identity) -> str:
    """A PEM CSR asking for `identity` (CN and both SANs), signed by `key`."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(identity_subject(identity.name))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(identity.name), x509.UniformResourceIdentifier(identity.spiffe_id)]
            ),
            critical=san_is_critical(identity.name),
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class Credentials:
    """An issued leaf, the chain to present after it, and the key it certifies."""

    identity: Identity
    key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    @classmethod
    def from_pem(
        cls,
        identity: Identity,
        key: ec.EllipticCurvePrivateKey,
        leaf_pem: str,
        chain_pem: Sequence[str],
    ) -> Credentials:
        try:
            leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
            chain = tuple(x509.load_pem_x509_certificate(p.encode()) for p in chain_pem)
        except ValueError:
            raise CertificateError(
                "the identity service answered with a malformed certificate"
            ) from None
        if leaf.public_key() != key.public_key():
            raise CertificateError("the issued certificate is not for this proxy's key")
        return cls(identity, key, leaf, chain)

    @property
    def not_before(self) -> datetime:
        return self.leaf.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        return self.leaf.not_valid_after_utc

    def chain_pem(self) -> bytes:
        certs = (self.leaf, *self.chain)
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def load_chain_in_memory(context: ssl.SSLContext, chain_pem: bytes, key_pem: bytes) -> None:
    """`context.load_cert_chain` from bytes, through anonymous memory files."""
    fds = [
        os.memfd_create("lacewing-cert", os.MFD_CLOEXEC),
        os.memfd_create("lacewing-key", os.MFD_CLOEXEC),
    ]
    try:
        for fd, data in zip(fds, (chain_pem, key_pem), strict=True):
            os.write(fd, data)
        context.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
    finally:
        for fd in fds:
            os.close(fd)


def _base(
    purpose: int, creds: Credentials, trust_anchors_pem: str, alpn: Sequence[str]
) -> ssl.SSLContext:
    context = ssl.SSLContext(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cadata=trust_anchors_pem)
    except ssl.SSLError:
        raise CertificateError("the trust anchors are not PEM certificates") from None
    load_chain_in_memory(context, creds.chain_pem(), creds.key_pem())
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def server_context(
    creds: Credentials, trust_anchors_pem: str, alpn: Sequence[str] = ()
) -> ssl.SSLContext:
    """Inbound: present `creds`, require a client certificate from the same trust anchors."""
    return _base(ssl.PROTOCOL_TLS_SERVER, creds, trust_anchors_pem, alpn)


def client_context(
    creds: Credentials, trust_anchors_pem: str, alpn: Sequence[str] = ()
) -> ssl.SSLContext:
    """Outbound: present `creds`; callers pass the peer's identity name as server_hostname."""
    context = _base(ssl.PROTOCOL_TLS_CLIENT, creds, trust_anchors_pem, alpn)
    context.check_hostname = True
    return context
