"""Read and write PEM certificates and keys, with one clear `CertificateError` per mistake.

`load_*` read a file, `parse_*` take the bytes (with a `source` naming where they came from,
for the message). Each failure names the file and says what is wrong in the user's terms
(unreadable, not PEM, no certificate in it, an unsupported key) and carries a hint. Validity
in time and chains are checked in `lacewing.tls.validate`, not here.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from lacewing.errors import CertificateError

__all__ = [
    "PrivateKey",
    "certificates_to_pem",
    "key_to_pem",
    "load_certificates",
    "load_private_key",
    "parse_certificates",
    "parse_private_key",
    "read_pem_file",
]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

_SUPPORTED_KEYS = (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)
_CERT_MARK = b"-----BEGIN CERTIFICATE-----"
_PEM_HINT = "give a PEM file (text starting with -----BEGIN ...-----), e.g. from `step certificate`"


def read_pem_file(path: str | Path, what: str) -> bytes:
    """The bytes of `path`; `what` ("trust anchors file") names it in the error."""
    try:
        return Path(path).expanduser().read_bytes()
    except FileNotFoundError:
        raise CertificateError(
            f"cannot read {what} {path}: no such file", hint="check the path"
        ) from None
    except IsADirectoryError:
        raise CertificateError(
            f"cannot read {what} {path}: it is a directory", hint="check the path"
        ) from None
    except OSError as exc:
        raise CertificateError(
            f"cannot read {what} {path}: {exc.strerror or exc}", hint="check the file's permissions"
        ) from None


def parse_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """All certificates of a PEM bundle, in order; at least one, else `CertificateError`."""
    if _CERT_MARK not in data:
        kind = "a private key, not a certificate" if b"PRIVATE KEY-----" in data else "not PEM"
        raise CertificateError(f"{source} is {kind}", hint=_PEM_HINT)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(
            f"{source} holds a malformed certificate: {exc}", hint=_PEM_HINT
        ) from None


def parse_private_key(data: bytes, source: str) -> PrivateKey:
    """The one private key in a PEM document (unencrypted PKCS#8, SEC1 or PKCS#1)."""
    if b"PRIVATE KEY-----" not in data:
        kind = "a certificate, not a private key" if _CERT_MARK in data else "not PEM"
        raise CertificateError(f"{source} is {kind}", hint=_PEM_HINT)
    if b"ENCRYPTED" in data:
        raise CertificateError(
            f"{source} is an encrypted private key",
            hint="give the key unencrypted (e.g. `openssl pkey -in KEY -out PLAIN`)",
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"{source} holds a malformed private key: {exc}") from None
    if not isinstance(key, _SUPPORTED_KEYS):
        raise CertificateError(
            f"{source} holds a {type(key).__name__}, which lacewing does not support",
            hint="use an ECDSA P-256 key",
        )
    return key


def load_certificates(path: str | Path, what: str = "certificate file") -> list[x509.Certificate]:
    """`parse_certificates` of a file."""
    return parse_certificates(read_pem_file(path, what), f"{what} {path}")


def load_private_key(path: str | Path, what: str = "key file") -> PrivateKey:
    """`parse_private_key` of a file."""
    return parse_private_key(read_pem_file(path, what), f"{what} {path}")


def certificates_to_pem(certificates: list[x509.Certificate] | x509.Certificate) -> str:
    """PEM text of one certificate or a bundle, in order."""
    certs = certificates if isinstance(certificates, list) else [certificates]
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def key_to_pem(key: PrivateKey) -> str:
    """Unencrypted PKCS#8 PEM text of a private key (what Kubernetes TLS Secrets hold)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
