"""Workload identities: names, parsing, and the ports the identity service is written against.

A meshed workload's identity is its Kubernetes service account. It is spelled two ways, and
both go into every leaf certificate the identity service issues:

    DNS name     SA.NS.serviceaccount.identity.lacewing.<trust-domain>   (a DNS SAN)
    SPIFFE ID    spiffe://<trust-domain>/ns/NS/sa/SA                     (a URI SAN)

`Identity` holds the three parts and renders both; `parse_identity` and `parse_spiffe_id`
go back from text, refusing anything that is not exactly one of those shapes (the DNS
form is ambiguous if a service-account name holds dots, so parsing splits on the fixed
`.serviceaccount.identity.lacewing.` infix and requires a dot-free namespace, which
Kubernetes guarantees: namespaces are DNS labels).

The identity service checks a request's token through a `Validator` (a Protocol: the
Kubernetes TokenReview adapter lives in `lacewing.k8s.tokenreview`, the local runtime's
HMAC tokens below). A validator answers with a `TokenReview`: authenticated or not, and for
whom. `identity_from_username` turns Kubernetes' `system:serviceaccount:NS:SA` into the
identity the request must match.

Local tokens are how the local runtime proves a pod's service account without a Kubernetes
API: `v1:NS:SA:<hex HMAC-SHA256(key, "NS/SA")>`. Colons cannot occur in namespace or
service-account names, so the format is unambiguous. The runtime mints them with
`mint_local_token`; `LocalTokenValidator` checks them with the same key.

This module is pure: no I/O, no asyncio, no cryptography package (only hashlib/hmac).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "DEFAULT_TRUST_DOMAIN",
    "DESTINATION_SERVICE_ACCOUNT",
    "IDENTITY_AUDIENCE",
    "IDENTITY_SERVICE_ACCOUNT",
    "POLICY_SERVICE_ACCOUNT",
    "Identity",
    "IdentityParseError",
    "LocalTokenValidator",
    "TokenReview",
    "Validator",
    "identity_from_username",
    "identity_service_name",
    "mint_local_token",
    "parse_identity",
    "parse_spiffe_id",
    "validate_trust_domain",
]

DEFAULT_TRUST_DOMAIN = "cluster.local"
IDENTITY_AUDIENCE = "identity.lacewing.io"
# The control plane's service accounts, as `lacewing install` names them: a component's
# certificate (and what destination announces for its pods) is `lacewing-<name>.<ns>...`.
IDENTITY_SERVICE_ACCOUNT = "lacewing-identity"
DESTINATION_SERVICE_ACCOUNT = "lacewing-destination"
POLICY_SERVICE_ACCOUNT = "lacewing-policy"
_INFIX = ".serviceaccount.identity.lacewing."
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_LABEL_RE = re.compile(rf"^{_LABEL}$")
_SUBDOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_SA_PREFIX = "system:serviceaccount:"
_LOCAL_TOKEN_VERSION = "v1"


class IdentityParseError(ValueError):
    """Text that is not a well-formed identity, SPIFFE ID, trust domain or username.

    A plain ValueError (the core imports nothing of ours); callers wrap it in the
    `LacewingError` that fits where the text came from.
    """


def validate_trust_domain(trust_domain: str) -> str:
    """Return the trust domain if it is a lowercase DNS name, else raise IdentityParseError."""
    if len(trust_domain) > 253 or not _SUBDOMAIN_RE.match(trust_domain):
        raise IdentityParseError(
            f"trust domain {trust_domain!r} is not a lowercase DNS name (like cluster.local)"
        )
    return trust_domain


def _check_names(namespace: str, service_account: str) -> None:
    if not _LABEL_RE.match(namespace):
        raise IdentityParseError(f"namespace {namespace!r} is not a DNS label")
    if len(service_account) > 253 or not _SUBDOMAIN_RE.match(service_account):
        raise IdentityParseError(f"service account {service_account!r} is not a DNS name")


@dataclass(frozen=True, order=True)
class Identity:
    """A workload identity: a service account in a namespace, within a trust domain."""

    namespace: str
    service_account: str
    trust_domain: str = DEFAULT_TRUST_DOMAIN

    def __post_init__(self) -> None:
        _check_names(self.namespace, self.service_account)
        validate_trust_domain(self.trust_domain)

    @property
    def name(self) -> str:
        """The DNS form, used as DNS SAN, TLS server name and in metrics labels."""
        return f"{self.service_account}.{self.namespace}{_INFIX}{self.trust_domain}"

    @property
    def spiffe_id(self) -> str:
        """The SPIFFE form, used as URI SAN."""
        return f"spiffe://{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def username(self) -> str:
        """The Kubernetes username a token for this service account authenticates as."""
        return f"{_SA_PREFIX}{self.namespace}:{self.service_account}"

    def __str__(self) -> str:
        return self.name


def identity_service_name(namespace: str, trust_domain: str) -> Identity:
    """The identity the identity service itself serves with (its service account)."""
    return Identity(namespace, IDENTITY_SERVICE_ACCOUNT, trust_domain)


def parse_identity(text: str, trust_domain: str | None = None) -> Identity:
    """Parse the DNS form; if `trust_domain` is given the name must be in it."""
    head, sep, domain = text.partition(_INFIX)
    if not sep:
        raise IdentityParseError(
            f"{text!r} is not an identity name (expected SA.NS{_INFIX}<trust-domain>)"
        )
    service_account, dot, namespace = head.rpartition(".")
    if not dot:
        raise IdentityParseError(f"{text!r} lacks the namespace part (SA.NS{_INFIX}...)")
    identity = Identity(namespace, service_account, validate_trust_domain(domain))
    if trust_domain is not None and domain != trust_domain:
        raise IdentityParseError(
            f"identity {text!r} is in trust domain {domain!r}, not {trust_domain!r}"
        )
    return identity


def parse_spiffe_id(text: str) -> Identity:
    """Parse `spiffe://TD/ns/NS/sa/SA`."""
    scheme, sep, rest = text.partition("://")
    parts = rest.split("/")
    if scheme != "spiffe" or not sep or len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa":
        raise IdentityParseError(f"{text!r} is not a SPIFFE ID (spiffe://TD/ns/NS/sa/SA)")
    return Identity(parts[2], parts[4], validate_trust_domain(parts[0]))


def identity_from_username(username: str, trust_domain: str) -> Identity:
    """Map `system:serviceaccount:NS:SA` to the identity in `trust_domain`."""
    if not username.startswith(_SA_PREFIX):
        raise IdentityParseError(f"{username!r} is not a service account (system:serviceaccount:…)")
    namespace, sep, service_account = username[len(_SA_PREFIX) :].partition(":")
    if not sep:
        raise IdentityParseError(f"{username!r} lacks the service account name")
    return Identity(namespace, service_account, trust_domain)


@dataclass(frozen=True)
class TokenReview:
    """A validator's answer: whether the token is good, and the username it proves.

    `error` explains a refusal in words a user can act on ("token expired", "audience not
    identity.lacewing.io"); it is never shown for an authenticated token.
    """

    authenticated: bool
    username: str = ""
    error: str = ""

    @classmethod
    def ok(cls, username: str) -> TokenReview:
        return cls(True, username)

    @classmethod
    def refused(cls, error: str) -> TokenReview:
        return cls(False, "", error)


@runtime_checkable
class Validator(Protocol):
    """Checks a workload's token. Implementations may do I/O; hence `async`."""

    async def validate(self, token: str) -> TokenReview:
        """Return who the token authenticates, or a refusal with the reason."""
        ...


def _local_mac(key: bytes, namespace: str, service_account: str) -> str:
    # hashlib and hmac only here: a proxy that never mints or checks a token does not load
    # them (with _hashlib's share of libcrypto, ~0.6 MB of a sidecar's RSS).
    import hashlib
    import hmac

    message = f"{namespace}/{service_account}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mint_local_token(key: bytes, namespace: str, service_account: str) -> str:
    """A token for the local runtime's pods: proves NS/SA to a `LocalTokenValidator`."""
    _check_names(namespace, service_account)
    if not key:
        raise IdentityParseError("the local token key is empty")
    mac = _local_mac(key, namespace, service_account)
    return f"{_LOCAL_TOKEN_VERSION}:{namespace}:{service_account}:{mac}"


@dataclass(frozen=True)
class LocalTokenValidator:
    """Validates `mint_local_token` tokens with the same key (constant-time comparison)."""

    key: bytes

    async def validate(self, token: str) -> TokenReview:
        return self.check(token)

    def check(self, token: str) -> TokenReview:
        parts = token.strip().split(":")
        if not token.isascii() or len(parts) != 4 or parts[0] != _LOCAL_TOKEN_VERSION:
            return TokenReview.refused("token is not a local-runtime token (v1:NS:SA:MAC)")
        _, namespace, service_account, mac = parts
        expected = _local_mac(self.key, namespace, service_account)
        import hmac  # (see _local_mac)

        if not hmac.compare_digest(expected.encode(), mac.encode()):
            return TokenReview.refused("token signature does not match the local token key")
        return TokenReview.ok(f"{_SA_PREFIX}{namespace}:{service_account}")
