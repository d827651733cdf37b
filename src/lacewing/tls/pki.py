"""Generate the certificates an install needs: trust anchor, identity issuer, webhook TLS.

How it works:

- The trust anchor is a self-signed ECDSA P-256 root CA (`root.lacewing.<trust-domain>`).
  The identity issuer is an intermediate CA (`identity.lacewing.<trust-domain>`, path length 0)
  signed by the anchor; the identity service signs proxies' 24h leaf certificates with it
  (`lacewing.tls.issuance`). Both live 365 days by default, as Linkerd's generated ones do.
- Webhooks get a small self-signed CA of their own (its PEM is the webhook configurations'
  `caBundle`) and one serving certificate per webhook Service, valid for the DNS name the API
  server dials: `<service>.<namespace>.svc`.
- Certificates start one minute in the past (`BACKDATE`) so that a node whose clock is a little
  behind does not reject them as not-yet-valid. `now` is injectable everywhere, so tests build
  expired or short-lived certificates without waiting.

A `CertifiedKey` pairs a certificate with its private key and renders both as PEM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lacewing.tls.extensions import end_entity, key_usage
from lacewing.tls.pem import PrivateKey, certificates_to_pem, key_to_pem

__all__ = [
    "BACKDATE",
    "DEFAULT_CA_LIFETIME",
    "CertifiedKey",
    "anchor_common_name",
    "generate_issuer",
    "generate_serving_certificate",
    "generate_trust_anchor",
    "generate_webhook_ca",
    "issuer_common_name",
    "new_key",
    "webhook_dns_name",
]

DEFAULT_CA_LIFETIME = timedelta(days=365)
BACKDATE = timedelta(minutes=1)


@dataclass(frozen=True)
class CertifiedKey:
    """A certificate and the private key it certifies."""

    certificate: x509.Certificate
    private_key: PrivateKey

    @property
    def cert_pem(self) -> str:
        return certificates_to_pem(self.certificate)

    @property
    def key_pem(self) -> str:
        return key_to_pem(self.private_key)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def anchor_common_name(trust_domain: str = "cluster.local") -> str:
    return f"root.lacewing.{trust_domain}"


def issuer_common_name(trust_domain: str = "cluster.local") -> str:
    return f"identity.lacewing.{trust_domain}"


def webhook_dns_name(service: str, namespace: str) -> str:
    """The name the API server uses to reach a webhook Service (and must find in its cert)."""
    return f"{service}.{namespace}.svc"


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime,
    lifetime: timedelta,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _self_signed_ca(common_name: str, now: datetime, lifetime: timedelta) -> CertifiedKey:
    key = new_key()
    cert = (
        _builder(common_name, _name(common_name), key.public_key(), now, lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return CertifiedKey(cert, key)


def _authority_key_id(ca: CertifiedKey) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca.certificate.public_key()  # type: ignore[arg-type]
        )
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def generate_trust_anchor(
    trust_domain: str = "cluster.local",
    *,
    now: datetime | None = None,
    lifetime: timedelta = DEFAULT_CA_LIFETIME,
) -> CertifiedKey:
    """A self-signed ECDSA P-256 root CA named `root.lacewing.<trust_domain>`."""
    return _self_signed_ca(anchor_common_name(trust_domain), _now(now), lifetime)


def generate_issuer(
    anchor: CertifiedKey,
    trust_domain: str = "cluster.local",
    *,
    now: datetime | None = None,
    lifetime: timedelta = DEFAULT_CA_LIFETIME,
) -> CertifiedKey:
    """An ECDSA P-256 intermediate CA `identity.lacewing.<trust_domain>` signed by `anchor`.

    Path length 0: it may sign leaf certificates only. Its validity is cut to the anchor's
    (a certificate cannot outlive its issuer in any verifier).
    """
    start = _now(now)
    lifetime = min(lifetime, anchor.certificate.not_valid_after_utc - start)
    key = new_key()
    cert = (
        _builder(
            issuer_common_name(trust_domain),
            anchor.certificate.subject,
            key.public_key(),
            start,
            lifetime,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
        .add_extension(_authority_key_id(anchor), critical=False)
        .sign(anchor.private_key, hashes.SHA256())
    )
    return CertifiedKey(cert, key)


def generate_webhook_ca(
    namespace: str = "lacewing",
    *,
    now: datetime | None = None,
    lifetime: timedelta = DEFAULT_CA_LIFETIME,
) -> CertifiedKey:
    """A self-signed CA for webhook serving certificates; its PEM is the `caBundle`."""
    return _self_signed_ca(f"webhook.{namespace}.lacewing", _now(now), lifetime)


def generate_serving_certificate(
    ca: CertifiedKey,
    service: str,
    namespace: str,
    *,
    now: datetime | None = None,
    lifetime: timedelta = DEFAULT_CA_LIFETIME,
) -> CertifiedKey:
    """A TLS server certificate for `<service>.<namespace>.svc`, signed by `ca`."""
    start = _now(now)
    lifetime = min(lifetime, ca.certificate.not_valid_after_utc - start)
    dns = webhook_dns_name(service, namespace)
    key = new_key()
    names: list[x509.GeneralName] = [
        x509.DNSName(dns),
        x509.DNSName(f"{dns}.cluster.local"),
        x509.DNSName(f"{service}.{namespace}"),
    ]
    builder = _builder(dns, ca.certificate.subject, key.public_key(), start, lifetime)
    cert = (
        end_entity(builder, usages=[ExtendedKeyUsageOID.SERVER_AUTH], names=names)
        .add_extension(_authority_key_id(ca), critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )
    return CertifiedKey(cert, key)
