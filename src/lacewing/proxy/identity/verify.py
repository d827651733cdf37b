"""Who is on the other end of a mutual-TLS connection, and why a handshake failed.

After a handshake OpenSSL has already verified the peer's chain against the trust anchors
(and, on the client side, its DNS SAN against the expected identity name passed as
`server_hostname`). What is left for us:

- `peer_identity(conn)` reads the peer's identity from its certificate: the DNS SAN that
  parses as an identity name (the inbound side labels metrics `client_id` with it);
- `expect_peer(conn, expected)` re-checks that identity against the expected one, so a
  caller that dialled without `server_hostname` still cannot talk to the wrong workload;
- `tls_failure_reason(exc)` maps a handshake exception to a short reason for a counter
  label (`unknown_ca`, `wrong_identity`, `expired`, `no_client_cert`, `handshake`), looked
  up in a table of OpenSSL verify codes and reason strings. TLS failures are counted by
  reason and the connection fails: there is no fallback to plaintext.
"""

from __future__ import annotations

import ssl
from typing import Any

from lacewing.core.identity import Identity, IdentityParseError, parse_identity
from lacewing.errors import CertificateError

__all__ = ["expect_peer", "peer_identity", "tls_failure_reason"]

# X509_V_ERR_* codes (OpenSSL's x509_vfy.h) -> reason label.
_VERIFY_CODES: dict[int, str] = {
    2: "unknown_ca",  # unable to get issuer certificate
    10: "expired",  # certificate has expired
    9: "not_yet_valid",
    18: "unknown_ca",  # self-signed leaf
    19: "unknown_ca",  # self-signed certificate in chain
    20: "unknown_ca",  # unable to get local issuer certificate
    21: "unknown_ca",  # unable to verify the first certificate
    62: "wrong_identity",  # hostname mismatch
}
# Reason strings of SSLError (from the peer's alert, when it was the one that refused).
_REASONS: dict[str, str] = {
    "TLSV1_ALERT_UNKNOWN_CA": "unknown_ca",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "expired",
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad_certificate",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no_client_cert",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "no_client_cert",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake",
}


def _peercert(conn: Any) -> dict[str, Any] | None:
    get = getattr(conn, "getpeercert", None)
    if get is None:  # an asyncio transport or stream writer: reach the SSL object
        obj = conn.get_extra_info("ssl_object") if hasattr(conn, "get_extra_info") else None
        get = getattr(obj, "getpeercert", None)
    cert = get() if get else None
    return cert or None


def peer_identity(conn: Any) -> Identity | None:
    """The identity in the peer's verified certificate, or None if it presented none.

    `conn` is an ssl.SSLObject / SSLSocket, or an asyncio transport / StreamWriter over one.
    """
    cert = _peercert(conn)
    if cert is None:
        return None
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "DNS":
            try:
                return parse_identity(value)
            except IdentityParseError:
                continue
    return None


def expect_peer(conn: Any, expected: Identity) -> Identity:
    """Return the peer's identity if it is `expected`, else raise CertificateError."""
    actual = peer_identity(conn)
    if actual != expected:
        raise CertificateError(
            f"peer identity is {actual.name if actual else 'absent'}, expected {expected.name}"
        )
    return actual


def tls_failure_reason(exc: BaseException) -> str:
    """A short label for why a handshake failed (for the TLS failure counter)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _VERIFY_CODES.get(exc.verify_code, "bad_certificate")
    if isinstance(exc, ssl.SSLError):
        return _REASONS.get(exc.reason or "", "handshake")
    if isinstance(exc, ConnectionError | EOFError):
        return "handshake"
    return "handshake"
