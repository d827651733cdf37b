"""Certificate checks that `install` and `check` share; each raises one clear CertificateError.

Contract of every `check_*` function: it returns None when the certificate passes and raises
`CertificateError` whose message says what is wrong in the user's terms (naming the
certificate by its subject, e.g. `certificate CN=identity.lacewing.cluster.local expired at
...`), with a hint. They read nothing but their arguments; time comes from the `now` argument
(default: the system clock, UTC), so a check's verdict is reproducible in tests.

Which key algorithms are supported is data (`ANCHOR_ALGORITHMS`, `ISSUER_ALGORITHMS`): trust
anchors may be ECDSA P-256/P-384 or RSA of at least 2048 bits (roots made by corporate PKIs),
the issuer must be ECDSA P-256 (it signs every proxy's certificate, and proxies speak P-256).

`validate_identity_credentials` runs the whole set on user-supplied anchors + issuer, in the
order a user would fix them, and is what `install --identity-*-file` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from lacewing.errors import CertificateError
from lacewing.tls.pem import PrivateKey

__all__ = [
    "ANCHOR_ALGORITHMS",
    "ISSUER_ALGORITHMS",
    "algorithm_name",
    "check_algorithm",
    "check_dns_name",
    "check_is_ca",
    "check_issued_by",
    "check_key_matches",
    "check_valid_for",
    "check_validity",
    "describe",
    "validate_identity_credentials",
]

_RENEW_HINT = "renew it: see docs/install.md (certificates) or docs/cert-manager.md"


def _ecdsa(curve: str) -> Callable[[object], bool]:
    def matches(key: object) -> bool:
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == curve

    return matches


def _rsa_at_least(bits: int) -> Callable[[object], bool]:
    def matches(key: object) -> bool:
        return isinstance(key, rsa.RSAPublicKey) and key.key_size >= bits

    return matches


ANCHOR_ALGORITHMS: dict[str, Callable[[object], bool]] = {
    "ECDSA P-256": _ecdsa("secp256r1"),
    "ECDSA P-384": _ecdsa("secp384r1"),
    "RSA >= 2048 bits": _rsa_at_least(2048),
}
ISSUER_ALGORITHMS: dict[str, Callable[[object], bool]] = {"ECDSA P-256": _ecdsa("secp256r1")}


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def describe(cert: x509.Certificate) -> str:
    """`certificate CN=<common name>` (or the full subject), for messages."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    subject = f"CN={names[0].value!s}" if names else cert.subject.rfc4514_string() or "(empty)"
    return f"certificate {subject}"


def algorithm_name(cert: x509.Certificate) -> str:
    """A readable name of the certificate's key algorithm, e.g. `ECDSA P-256`, `RSA 2048`."""
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ECDSA P-256", "secp384r1": "ECDSA P-384"}.get(
            key.curve.name, f"ECDSA {key.curve.name}"
        )
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return type(key).__name__


def check_algorithm(
    cert: x509.Certificate, allowed: dict[str, Callable[[object], bool]] = ANCHOR_ALGORITHMS
) -> None:
    """The certificate's key is one of `allowed`."""
    key = cert.public_key()
    if not any(matches(key) for matches in allowed.values()):
        raise CertificateError(
            f"{describe(cert)} uses {algorithm_name(cert)}, which is not supported "
            f"(supported: {', '.join(allowed)})",
            hint="generate it with an ECDSA P-256 key",
        )


def check_validity(cert: x509.Certificate, now: datetime | None = None) -> None:
    """`now` lies within the certificate's validity period."""
    moment = _now(now)
    if moment < cert.not_valid_before_utc:
        raise CertificateError(
            f"{describe(cert)} is not valid before {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}",
            hint="check the clocks of this machine and of the cluster",
        )
    if moment > cert.not_valid_after_utc:
        raise CertificateError(
            f"{describe(cert)} expired at {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}",
            hint=_RENEW_HINT,
        )


def check_valid_for(cert: x509.Certificate, days: int, now: datetime | None = None) -> None:
    """The certificate stays valid for at least `days` more days (a warning in `check`)."""
    left = cert.not_valid_after_utc - _now(now)
    if left < timedelta(days=days):
        raise CertificateError(
            f"{describe(cert)} will expire in {max(left.days, 0)} days "
            f"(at {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}), less than {days} days",
            hint=_RENEW_HINT,
        )


def check_is_ca(cert: x509.Certificate) -> None:
    """The certificate may sign other certificates (basicConstraints CA:TRUE)."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise CertificateError(
            f"{describe(cert)} is not a CA certificate (basicConstraints CA:TRUE is missing)",
            hint="the issuer must be an intermediate CA; see docs/install.md",
        )


def check_issued_by(cert: x509.Certificate, issuers: Sequence[x509.Certificate]) -> None:
    """One of `issuers` signed `cert` directly (names chain and the signature verifies)."""
    for issuer in issuers:
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return
    names = ", ".join(describe(i) for i in issuers) or "no certificates"
    raise CertificateError(
        f"{describe(cert)} was not issued by the trust anchors ({names})",
        hint="give the issuer certificate signed by one of the trust anchors",
    )


def check_dns_name(cert: x509.Certificate, name: str) -> None:
    """`name` is one of the certificate's DNS subject alternative names."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = sans.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    if name.lower() not in (n.lower() for n in dns_names):
        raise CertificateError(
            f"{describe(cert)} is not valid for {name} (its names: {', '.join(dns_names) or '-'})",
            hint="regenerate the certificate: `lacewing upgrade | kubectl apply -f -`",
        )


def _public_der(key: object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_key_matches(cert: x509.Certificate, key: PrivateKey) -> None:
    """`key` is the private half of the certificate's public key."""
    if _public_der(cert.public_key()) != _public_der(key.public_key()):
        raise CertificateError(
            f"the private key does not match {describe(cert)}",
            hint="give the key that was generated with this certificate",
        )


def validate_identity_credentials(
    anchors: Sequence[x509.Certificate],
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    now: datetime | None = None,
) -> None:
    """Everything install requires of user-supplied trust anchors and issuer.

    Order: anchors (algorithm, validity), issuer (CA, algorithm, validity, signed by an
    anchor), then the issuer key. The first failure is raised.
    """
    if not anchors:
        raise CertificateError("the trust anchors file holds no certificate")
    for anchor in anchors:
        check_algorithm(anchor, ANCHOR_ALGORITHMS)
        check_validity(anchor, now)
    check_is_ca(issuer)
    check_algorithm(issuer, ISSUER_ALGORITHMS)
    check_validity(issuer, now)
    check_issued_by(issuer, anchors)
    check_key_matches(issuer, issuer_key)
