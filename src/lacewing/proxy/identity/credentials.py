"""The proxy's issued certificate with its key, and TLS contexts built from them without a disk.

The private key is an ECDSA P-256 key made once per process (`keygen`: in a short-lived child,
so `cryptography` never stays loaded in the proxy) and never written anywhere. `Credentials`
keeps it and the issued certificates as PEM, which is all OpenSSL needs; the validity dates
are read from the leaf's DER with a few lines of ASN.1 walking (`validity`), since the stdlib
has no public certificate parser. Python's `SSLContext.load_cert_chain` only reads files, so
`load_chain_in_memory` hands it an anonymous memory file (`memfd_create`, reached as
/proc/self/fd/N): the PEM lives in RAM only, is unlinked from birth, and is closed right after
OpenSSL has read it. OpenSSL refuses a certificate that is not for the key ("key values
mismatch"), which is how `Credentials.from_pem` knows the identity service certified our key.

`server_context` and `client_context` turn credentials into the two mutual-TLS contexts of a
proxy:

- server (inbound): presents the leaf + chain, requires a client certificate that chains to a
  trust anchor (the client's identity is then read from it, see `verify.py`);
- client (outbound): presents the same leaf, verifies the server against the trust anchors
  and checks its DNS SAN against the `server_hostname` the caller passes, which must be the
  peer's expected identity name (that is how "wrong identity" fails the handshake).

Both speak TLS 1.3 only (every peer is a lacewing proxy) and offer the given ALPN protocols.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lacewing.core.identity import Identity
from lacewing.errors import CertificateError
from lacewing.proxy.identity.keygen import make_csr, new_private_key  # (import cryptography lazily)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "Credentials",
    "client_context",
    "load_chain_in_memory",
    "make_csr",
    "new_private_key",
    "server_context",
    "validity",
]

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----")


def _tlv(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `at`."""
    tag, length = der[at], der[at + 1]
    at += 2
    if length & 0x80:
        n = length & 0x7F
        if not 1 <= n <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[at : at + n], "big")
        at += n
    if at + length > len(der):
        raise ValueError("truncated DER")
    return tag, at, at + length


def _time(der: bytes, at: int) -> tuple[datetime, int]:
    tag, start, end = _tlv(der, at)
    text = der[start:end].decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ: years 1950-2049 (RFC 5280 4.1.2.5.1)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError("not a certificate time")
    # (by hand, not strptime: that imports _strptime on first use, and a proxy that dropped
    # privileges may no longer be able to read the interpreter's files)
    if len(text) != 15 or not text.endswith("Z") or not text[:14].isdigit():
        raise ValueError("not a certificate time")
    month, day, hour, minute, second = (int(text[i : i + 2]) for i in range(4, 14, 2))
    return datetime(int(text[:4]), month, day, hour, minute, second, tzinfo=UTC), end


def validity(der: bytes) -> tuple[datetime, datetime]:
    """(notBefore, notAfter) of an X.509 certificate in DER (RFC 5280 4.1)."""
    _, cert, _ = _tlv(der, 0)  # Certificate ::= SEQUENCE { tbsCertificate, ... }
    _, at, _ = _tlv(der, cert)  # TBSCertificate ::= SEQUENCE {
    if der[at] == 0xA0:  # version [0] EXPLICIT (absent for v1)
        at = _tlv(der, at)[2]
    at = _tlv(der, at)[2]  # serialNumber
    at = _tlv(der, at)[2]  # signature AlgorithmIdentifier
    at = _tlv(der, at)[2]  # issuer Name
    _, at, _ = _tlv(der, at)  # validity ::= SEQUENCE { notBefore, notAfter }
    not_before, at = _time(der, at)
    not_after, _ = _time(der, at)
    return not_before, not_after


@dataclass(frozen=True)
class Credentials:
    """An issued leaf, the chain to present after it, and the key it certifies (all PEM)."""

    identity: Identity
    key: bytes  # PKCS#8 PEM, in memory only
    leaf: str
    chain: tuple[str, ...]
    not_before: datetime
    not_after: datetime

    @classmethod
    def from_pem(
        cls,
        identity: Identity,
        key_pem: bytes | ec.EllipticCurvePrivateKey,
        leaf_pem: str,
        chain_pem: Sequence[str],
    ) -> Credentials:
        """Check that the leaf and chain are certificates and that the leaf is for the key
        (PEM, or a `cryptography` key from a caller that has it loaded anyway)."""
        if not isinstance(key_pem, bytes):
            from cryptography.hazmat.primitives import serialization

            key_pem = key_pem.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        try:
            if not all(_PEM_CERT.fullmatch(p.strip()) for p in (leaf_pem, *chain_pem)):
                raise ValueError("not one PEM certificate")
            der = ssl.PEM_cert_to_DER_cert(leaf_pem.strip())
            not_before, not_after = validity(der)
        except (ValueError, IndexError, UnicodeDecodeError):
            raise CertificateError(
                "the identity service answered with a malformed certificate"
            ) from None
        creds = cls(identity, key_pem, leaf_pem, tuple(chain_pem), not_before, not_after)
        try:
            load_chain_in_memory(
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), creds.chain_pem(), key_pem
            )
        except ssl.SSLError as exc:
            # OpenSSL checks that the leaf's public key is the key's ("key values mismatch")
            if "KEY_VALUES_MISMATCH" in str(exc.reason):
                raise CertificateError(
                    "the issued certificate is not for this proxy's key"
                ) from None
            raise CertificateError(
                "the identity service answered with a malformed certificate"
            ) from None
        return creds

    def chain_pem(self) -> bytes:
        return "".join(p.strip() + "\n" for p in (self.leaf, *self.chain)).encode()

    def key_pem(self) -> bytes:
        return self.key


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


NO_TICKETS = 0
"""Session tickets a server context sends after a TLS 1.3 handshake. OpenSSL sends two by
default; no lacewing client resumes sessions (connections between proxies are pooled
instead), so tickets would only cost each handshake two encrypted records on the server and
a stored session per connection on the client."""


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
    context = _base(ssl.PROTOCOL_TLS_SERVER, creds, trust_anchors_pem, alpn)
    context.num_tickets = NO_TICKETS
    return context


def client_context(
    creds: Credentials, trust_anchors_pem: str, alpn: Sequence[str] = ()
) -> ssl.SSLContext:
    """Outbound: present `creds`; callers pass the peer's identity name as server_hostname."""
    context = _base(ssl.PROTOCOL_TLS_CLIENT, creds, trust_anchors_pem, alpn)
    context.check_hostname = True
    return context
