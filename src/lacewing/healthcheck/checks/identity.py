"""`lacewing-identity` and `lacewing-webhooks-and-apisvc-tls`: are the certificates sound?

Identity: the trust anchors come from the trust-roots ConfigMap, the issuer certificate and key
from the issuer Secret (a `kubernetes.io/tls` Secret, which cert-manager maintains when the
issuer is external). "certificate config is valid" parses them all and checks the key matches
the certificate; the other checks judge them with `lacewing.tls.validate` at `facts.now()`.

Webhooks: for each webhook Service in `WEBHOOKS`, the serving certificate in its Secret must be
within its validity, carry the DNS name the API server dials (`<service>.<namespace>.svc`),
match its key, and be signed by (or be) the `caBundle` of every webhook configuration entry
that calls that Service: otherwise the API server refuses to call the webhook.

Parsed certificates are volatile facts, so a retry (or cert-manager rotating them) is seen.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from lacewing.errors import CertificateError
from lacewing.healthcheck.checks import installed
from lacewing.healthcheck.checks.admission import INJECTOR_REACHABLE
from lacewing.healthcheck.facts import Facts
from lacewing.healthcheck.model import Category, Check, Outcome
from lacewing.tls.pem import parse_certificates, parse_private_key
from lacewing.tls.validate import (
    ANCHOR_ALGORITHMS,
    ISSUER_ALGORITHMS,
    check_algorithm,
    check_dns_name,
    check_issued_by,
    check_key_matches,
    check_valid_for,
    check_validity,
)

__all__ = ["LACEWING_IDENTITY", "MIN_VALID_DAYS", "WEBHOOKS", "WEBHOOKS_TLS", "Webhook"]

MIN_VALID_DAYS = 60
Obj = dict[str, Any]


def _secret_text(secret: Obj, key: str, source: str) -> bytes:
    raw = (secret.get("data") or {}).get(key)
    if not raw:
        raise CertificateError(f"{source} has no {key}", hint=installed.REINSTALL_HINT)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError(f"{source} key {key} is not base64") from None


def _issuer_secret(facts: Facts) -> Obj:
    ns = facts.options.namespace
    secret = facts.get("v1", "Secret", installed.ISSUER_SECRET, ns)
    if secret is None:
        raise CertificateError(
            f'Secret "{installed.ISSUER_SECRET}" was not found in namespace "{ns}"',
            hint=installed.ISSUER_HINT,
        )
    return secret


def trust_anchors(facts: Facts) -> list[x509.Certificate]:
    def build() -> list[x509.Certificate]:
        ns = facts.options.namespace
        name = installed.TRUST_ROOTS_CONFIG_MAP
        cm = facts.get("v1", "ConfigMap", name, ns)
        if cm is None:
            raise CertificateError(
                f'ConfigMap "{name}" was not found in namespace "{ns}"',
                hint=installed.REINSTALL_HINT,
            )
        pem = (cm.get("data") or {}).get(installed.TRUST_ROOTS_KEY, "")
        return parse_certificates(pem.encode(), f"the trust anchors in ConfigMap {name}")

    return facts.cached("trust_anchors", build, volatile=True)


def issuer_certificate(facts: Facts) -> x509.Certificate:
    def build() -> x509.Certificate:
        source = f"Secret {installed.ISSUER_SECRET}"
        data = _secret_text(_issuer_secret(facts), "tls.crt", source)
        return parse_certificates(data, f"the issuer certificate in {source}")[0]

    return facts.cached("issuer_certificate", build, volatile=True)


def certificate_config_valid(facts: Facts) -> Outcome:
    trust_anchors(facts)
    cert = issuer_certificate(facts)
    source = f"Secret {installed.ISSUER_SECRET}"
    key = parse_private_key(
        _secret_text(_issuer_secret(facts), "tls.key", source), f"the issuer key in {source}"
    )
    check_key_matches(cert, key)
    return Outcome.ok()


def _each_anchor(judge: Callable[[x509.Certificate, Facts], None]) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        for anchor in trust_anchors(facts):
            judge(anchor, facts)
        return Outcome.ok()

    return check


def _issuer(judge: Callable[[x509.Certificate, Facts], None]) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        judge(issuer_certificate(facts), facts)
        return Outcome.ok()

    return check


def _issued_by_anchor(cert: x509.Certificate, facts: Facts) -> None:
    check_issued_by(cert, trust_anchors(facts))


_RENEW_ANCHORS = (
    "rotate the trust anchors: see docs/install.md (certificates) or docs/cert-manager.md"
)
_RENEW_ISSUER = "rotate the issuer certificate: see docs/install.md or docs/cert-manager.md"

LACEWING_IDENTITY: Category[Facts] = Category(
    "lacewing-identity",
    (
        Check(
            "certificate config is valid",
            "re-create the identity Secret and ConfigMap: lacewing upgrade | kubectl apply -f -",
            certificate_config_valid,
            fatal=True,
        ),
        Check(
            "trust anchors are using supported crypto algorithm",
            "use ECDSA P-256 trust anchors",
            _each_anchor(lambda c, f: check_algorithm(c, ANCHOR_ALGORITHMS)),
            fatal=True,
        ),
        Check(
            "trust anchors are within their validity period",
            _RENEW_ANCHORS,
            _each_anchor(lambda c, f: check_validity(c, f.now())),
            fatal=True,
        ),
        Check(
            "trust anchors are valid for at least 60 days",
            _RENEW_ANCHORS,
            _each_anchor(lambda c, f: check_valid_for(c, MIN_VALID_DAYS, f.now())),
            warning=True,
        ),
        Check(
            "issuer cert is using supported crypto algorithm",
            "use an ECDSA P-256 issuer certificate",
            _issuer(lambda c, f: check_algorithm(c, ISSUER_ALGORITHMS)),
            fatal=True,
        ),
        Check(
            "issuer cert is within its validity period",
            _RENEW_ISSUER,
            _issuer(lambda c, f: check_validity(c, f.now())),
            fatal=True,
        ),
        Check(
            "issuer cert is valid for at least 60 days",
            _RENEW_ISSUER,
            _issuer(lambda c, f: check_valid_for(c, MIN_VALID_DAYS, f.now())),
            warning=True,
        ),
        Check(
            "issuer cert is issued by the trust anchor",
            "the issuer must be signed by one of the trust anchors: re-issue it from the anchor",
            _issuer(_issued_by_anchor),
        ),
    ),
    needs=("lacewing-existence",),
)


@dataclass(frozen=True)
class Webhook:
    """A webhook Service whose serving certificate the API server must trust."""

    title: str  # "proxy-injector"
    service: str
    secret: str


WEBHOOKS: tuple[Webhook, ...] = tuple(Webhook(*row) for row in installed.WEBHOOK_ROWS)
_WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def _ca_bundles(facts: Facts, service: str) -> list[bytes]:
    """The caBundle of every webhook entry in the cluster that calls `service`."""
    ns = facts.options.namespace
    bundles: list[bytes] = []
    names = {
        (o.get("kind"), o.get("metadata", {}).get("name"))
        for o in facts.rendered()
        if o.get("kind") in _WEBHOOK_KINDS
    }
    for kind, name in sorted(names, key=str):
        config = facts.get("admissionregistration.k8s.io/v1", str(kind), str(name))
        for hook in (config or {}).get("webhooks") or []:
            ref = (hook.get("clientConfig") or {}).get("service") or {}
            if ref.get("name") == service and ref.get("namespace") == ns:
                raw = (hook.get("clientConfig") or {}).get("caBundle", "")
                try:
                    bundles.append(base64.b64decode(raw, validate=True))
                except (binascii.Error, ValueError):
                    bundles.append(b"")
    return bundles


def _serving_certificate(facts: Facts, hook: Webhook) -> x509.Certificate:
    def build() -> x509.Certificate:
        ns = facts.options.namespace
        secret = facts.get("v1", "Secret", hook.secret, ns)
        if secret is None:
            raise CertificateError(
                f'Secret "{hook.secret}" was not found in namespace "{ns}"',
                hint=installed.REINSTALL_HINT,
            )
        source = f"Secret {hook.secret}"
        cert = parse_certificates(_secret_text(secret, "tls.crt", source), source)[0]
        key = parse_private_key(_secret_text(secret, "tls.key", source), source)
        check_key_matches(cert, key)
        return cert

    return facts.cached(f"webhook_cert:{hook.secret}", build, volatile=True)


def webhook_cert_valid(hook: Webhook) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        ns = facts.options.namespace
        cert = _serving_certificate(facts, hook)
        check_validity(cert, facts.now())
        check_dns_name(cert, f"{hook.service}.{ns}.svc")
        bundles = _ca_bundles(facts, hook.service)
        if not bundles:
            return Outcome.fail(f"no webhook configuration calls Service {hook.service}")
        for bundle in bundles:
            cas = parse_certificates(bundle, f"the caBundle of the {hook.title} webhook")
            if cert not in cas:
                try:
                    check_issued_by(cert, cas)
                except CertificateError:
                    return Outcome.fail(
                        f"the {hook.title} serving certificate is not signed by its "
                        "webhook configuration's caBundle"
                    )
        return Outcome.ok()

    return check


def webhook_cert_lasts(hook: Webhook) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        check_valid_for(_serving_certificate(facts, hook), MIN_VALID_DAYS, facts.now())
        return Outcome.ok()

    return check


_WEBHOOK_HINT = (
    "re-generate the webhook certificates and caBundles: lacewing upgrade | kubectl apply -f -"
)

_WEBHOOK_CERT_CHECKS: tuple[Check[Facts], ...] = tuple(
    check
    for hook in WEBHOOKS
    for check in (
        Check(f"{hook.title} webhook has valid cert", _WEBHOOK_HINT, webhook_cert_valid(hook)),
        Check(
            f"{hook.title} cert is valid for at least {MIN_VALID_DAYS} days",
            _WEBHOOK_HINT,
            webhook_cert_lasts(hook),
            warning=True,
        ),
    )
)

WEBHOOKS_TLS: Category[Facts] = Category(
    "lacewing-webhooks-and-apisvc-tls",
    (*_WEBHOOK_CERT_CHECKS, INJECTOR_REACHABLE),
    needs=("lacewing-existence",),
)
