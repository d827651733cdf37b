"""The identity service's decision: given a certify request, issue a leaf or refuse it.

`IdentityService.certify(body)` is the whole protocol minus the transport. It takes the
decoded JSON body of `POST /v1/certify` and returns `(status, json_body)`:

    400  the body is not {"identity": str, "token": str, "csr": str}, the identity is not a
         name in our trust domain, or the CSR does not parse / its signature does not verify
    401  the validator refused the token
    403  the token is good but proves another service account than `identity`, or the CSR
         asks for a key type or names other than that identity's
    503  the validator could not be asked (Kubernetes API unreachable), or there is no usable
         issuer (unreadable, expired); nothing can be issued until that is fixed
    200  {"leaf": PEM, "chain": [PEM...], "valid_until": RFC3339}

Checks run in that order and nothing is signed before all have passed. The issuer is
fetched per request from an `IssuerSource` (see `issuer_files.py`), so a rotated issuer is
used from the next request on. Time comes from an injectable `now()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lacewing.core.identity import (
    Identity,
    IdentityParseError,
    Validator,
    identity_from_username,
    parse_identity,
)
from lacewing.errors import CertificateError, IdentityError, LacewingError
from lacewing.tls.issuance import (
    DEFAULT_CLOCK_SKEW,
    DEFAULT_LIFETIME,
    Issuer,
    issue_leaf,
    load_csr,
)

__all__ = ["CertifyResult", "IdentityService", "IssuerSource", "rfc3339"]

log = logging.getLogger(__name__)

IssuerSource = Callable[[], Issuer]
"""Returns the current issuer, or raises CertificateError if there is no usable one."""


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CertifyResult:
    status: int
    body: dict[str, Any]

    @classmethod
    def error(cls, status: int, message: str) -> CertifyResult:
        return cls(status, {"error": message})


@dataclass
class IdentityService:
    trust_domain: str
    validator: Validator
    issuer: IssuerSource
    lifetime: timedelta = DEFAULT_LIFETIME
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    issued: int = 0
    refused: int = 0

    async def certify(self, body: object) -> CertifyResult:
        result = await self._certify(body)
        if result.status == 200:
            self.issued += 1
        else:
            self.refused += 1
            log.info("certify refused (%d): %s", result.status, result.body.get("error"))
        return result

    async def _certify(self, body: object) -> CertifyResult:
        if not isinstance(body, dict):
            return CertifyResult.error(400, "the body must be a JSON object")
        fields = {k: body.get(k) for k in ("identity", "token", "csr")}
        missing = [k for k, v in fields.items() if not isinstance(v, str) or not v]
        if missing:
            return CertifyResult.error(400, f"missing or empty field(s): {', '.join(missing)}")
        name, token, csr = (str(fields[k]) for k in ("identity", "token", "csr"))
        try:
            wanted = parse_identity(name, self.trust_domain)
        except IdentityParseError as exc:
            return CertifyResult.error(400, str(exc))
        try:
            request = load_csr(csr)
        except CertificateError as exc:
            return CertifyResult.error(400, str(exc))

        try:
            review = await self.validator.validate(token)
        except LacewingError as exc:  # could not ask (API down): not the token's fault
            return CertifyResult.error(503, f"cannot validate the token now: {exc}")
        if not review.authenticated:
            return CertifyResult.error(401, f"token refused: {review.error or 'not authenticated'}")
        try:
            proven: Identity = identity_from_username(review.username, self.trust_domain)
        except IdentityParseError as exc:
            return CertifyResult.error(403, f"token does not prove a service account: {exc}")
        if proven != wanted:
            return CertifyResult.error(
                403, f"token proves {proven.name}, but the request is for {wanted.name}"
            )

        try:
            issuer = self.issuer()
        except CertificateError as exc:
            return CertifyResult.error(503, f"no usable issuer: {exc}")
        try:
            leaf = issue_leaf(
                request,
                wanted,
                issuer,
                now=self.now(),
                lifetime=self.lifetime,
                clock_skew=self.clock_skew,
            )
        except IdentityError as exc:
            return CertifyResult.error(403, str(exc))
        except CertificateError as exc:  # the CSR parsed already: this is the issuer's fault
            return CertifyResult.error(503, f"no usable issuer: {exc}")
        return CertifyResult(
            200,
            {
                "leaf": leaf.leaf_pem,
                "chain": leaf.chain_pem,
                "valid_until": rfc3339(leaf.valid_until),
            },
        )
