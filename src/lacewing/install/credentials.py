"""The certificates an install writes: made fresh, loaded from files, or read back on upgrade.

How it works: `Credentials` holds PEM text only (what goes into Secrets and ConfigMaps).

- `generate` makes everything: trust anchor + identity issuer (unless the issuer is external,
  managed by cert-manager) and a webhook CA with one serving certificate per webhook Service.
- `from_files` loads the user's `--identity-*-file`s and checks them with
  `lacewing.tls.validate.validate_identity_credentials` (algorithm, validity, chain, key) so
  that a wrong file is one clear line at install time, not a crash-looping identity pod.
- `upgrade` keeps the identity credentials found in the cluster (so proxies' certificates keep
  chaining) and regenerates webhook certificates, whose only client is the API server.

Only the trust anchors (public) also go into the `lacewing-config` values; the issuer key is
written to the issuer Secret and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from lacewing.errors import CertificateError, ConfigError
from lacewing.tls import pki
from lacewing.tls.pem import (
    certificates_to_pem,
    key_to_pem,
    load_certificates,
    load_private_key,
    parse_certificates,
    parse_private_key,
)
from lacewing.tls.validate import validate_identity_credentials

__all__ = [
    "WEBHOOK_SERVICES",
    "Credentials",
    "IdentityFiles",
    "for_upgrade",
    "from_files",
    "generate",
]

# Webhook Service name -> the Deployment component that serves it.
WEBHOOK_SERVICES: dict[str, str] = {
    "lacewing-proxy-injector": "proxy-injector",
    "lacewing-policy-validator": "policy",
}


@dataclass(frozen=True)
class IdentityFiles:
    trust_anchors: str | None = None
    issuer_certificate: str | None = None
    issuer_key: str | None = None

    @property
    def given(self) -> bool:
        return any((self.trust_anchors, self.issuer_certificate, self.issuer_key))


@dataclass(frozen=True)
class Credentials:
    """PEM text of every certificate and key an install writes."""

    trust_anchors_pem: str
    issuer_cert_pem: str | None  # None: external issuer (cert-manager writes the Secret)
    issuer_key_pem: str | None
    webhook_ca_pem: str
    webhook_certs: dict[str, tuple[str, str]] = field(default_factory=dict)  # svc -> (crt, key)


def _webhooks(namespace: str, now: datetime | None) -> tuple[str, dict[str, tuple[str, str]]]:
    ca = pki.generate_webhook_ca(namespace, now=now)
    certs = {}
    for service in WEBHOOK_SERVICES:
        serving = pki.generate_serving_certificate(ca, service, namespace, now=now)
        certs[service] = (serving.cert_pem, serving.key_pem)
    return ca.cert_pem, certs


def generate(
    namespace: str,
    trust_domain: str,
    *,
    external_issuer: bool = False,
    trust_anchors_pem: str | None = None,
    now: datetime | None = None,
) -> Credentials:
    """Fresh credentials; with `external_issuer` only the webhook ones (and given anchors)."""
    ca_pem, certs = _webhooks(namespace, now)
    if external_issuer:
        return Credentials(trust_anchors_pem or "", None, None, ca_pem, certs)
    anchor = pki.generate_trust_anchor(trust_domain, now=now)
    issuer = pki.generate_issuer(anchor, trust_domain, now=now)
    return Credentials(anchor.cert_pem, issuer.cert_pem, issuer.key_pem, ca_pem, certs)


def from_files(
    namespace: str,
    files: IdentityFiles,
    *,
    external_issuer: bool = False,
    now: datetime | None = None,
) -> Credentials:
    """Credentials from the user's files (all three, or only anchors with an external issuer)."""
    if external_issuer:
        if files.issuer_certificate or files.issuer_key:
            raise ConfigError(
                "--identity-external-issuer takes no issuer certificate or key files",
                hint="cert-manager writes the issuer Secret; see docs/cert-manager.md",
            )
        anchors_pem = None
        if files.trust_anchors:
            anchors = load_certificates(files.trust_anchors, "trust anchors file")
            anchors_pem = certificates_to_pem(anchors)
        ca_pem, certs = _webhooks(namespace, now)
        return Credentials(anchors_pem or "", None, None, ca_pem, certs)
    missing = [
        flag
        for flag, value in (
            ("--identity-trust-anchors-file", files.trust_anchors),
            ("--identity-issuer-certificate-file", files.issuer_certificate),
            ("--identity-issuer-key-file", files.issuer_key),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)} missing: give all three identity files or none",
            hint="without files, install generates a trust anchor and issuer",
        )
    assert files.trust_anchors and files.issuer_certificate and files.issuer_key
    anchors = load_certificates(files.trust_anchors, "trust anchors file")
    issuer_chain = load_certificates(files.issuer_certificate, "issuer certificate file")
    key = load_private_key(files.issuer_key, "issuer key file")
    validate_identity_credentials(anchors, issuer_chain[0], key, now)
    ca_pem, certs = _webhooks(namespace, now)
    return Credentials(
        certificates_to_pem(anchors),
        certificates_to_pem(issuer_chain),
        key_to_pem(key),
        ca_pem,
        certs,
    )


def for_upgrade(stored: Credentials, namespace: str, *, now: datetime | None = None) -> Credentials:
    """Keep the stored identity credentials, renew the webhook ones."""
    if stored.issuer_cert_pem and stored.issuer_key_pem:
        source = "the cluster's issuer Secret"
        try:
            anchors = parse_certificates(stored.trust_anchors_pem.encode(), "stored trust anchors")
            issuer = parse_certificates(stored.issuer_cert_pem.encode(), source)[0]
            key = parse_private_key(stored.issuer_key_pem.encode(), source)
        except CertificateError as exc:
            raise CertificateError(
                f"cannot reuse the installed identity: {exc}",
                hint="give new --identity-*-file flags to replace it",
            ) from None
        validate_identity_credentials(anchors, issuer, key, now)
    ca_pem, certs = _webhooks(namespace, now)
    return replace(stored, webhook_ca_pem=ca_pem, webhook_certs=certs)
