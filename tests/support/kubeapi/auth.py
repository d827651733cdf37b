"""Who may call the emulator and what the review APIs answer.

- Authentication: every request needs `Authorization: Bearer <token>`; the kubeconfig's token
  is the cluster admin, and tokens registered with `register_token` authenticate as their
  user. Anything else is a 401, as from a real server.
- Authorization: everything is allowed unless a test called `deny(verb, resource, group,
  namespace)`; a denied request is a 403 and a SelfSubjectAccessReview for it answers
  `allowed: false`, so a client's pre-flight check and the real call agree.
- TokenRequest (`serviceaccounts/<name>/token`) mints a token for the ServiceAccount,
  registered as `system:serviceaccount:<ns>:<name>` with the requested audiences.
- TokenReview: a registered token is authenticated as its user and groups when the review's
  audiences (if any) intersect the token's audiences (a token registered without audiences
  matches any); an unknown token or an audience mismatch is `authenticated: false`.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.kubeapi.errors import ApiError


@dataclass(frozen=True)
class TokenInfo:
    username: str
    groups: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()


@dataclass(frozen=True)
class Denial:
    verb: str
    resource: str
    group: str
    namespace: str | None

    def covers(self, verb: str, resource: str, group: str, namespace: str | None) -> bool:
        return (
            self.verb in (verb, "*")
            and self.resource in (resource, "*")
            and self.group in (group, "*")
            and (self.namespace is None or self.namespace == namespace)
        )


class Auth:
    """Tokens, denials and the two review kinds (see the module docstring)."""

    def __init__(self, admin_token: str) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, TokenInfo] = {
            admin_token: TokenInfo("kubernetes-admin", ("system:masters", "system:authenticated"))
        }
        self._denials: list[Denial] = []

    def register_token(
        self,
        token: str,
        username: str,
        groups: tuple[str, ...] = (),
        audiences: tuple[str, ...] = (),
    ) -> None:
        with self._lock:
            self._tokens[token] = TokenInfo(username, tuple(groups), tuple(audiences))

    def deny(self, verb: str, resource: str, group: str = "", namespace: str | None = None) -> None:
        with self._lock:
            self._denials.append(Denial(verb, resource, group, namespace))

    def authenticate(self, header: str | None) -> TokenInfo:
        token = header[7:].strip() if header and header.lower().startswith("bearer ") else None
        with self._lock:
            info = self._tokens.get(token) if token else None
        if info is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return info

    def allowed(self, verb: str, resource: str, group: str, namespace: str | None) -> bool:
        with self._lock:
            return not any(d.covers(verb, resource, group, namespace) for d in self._denials)

    def authorize(
        self,
        verb: str,
        resource: str,
        group: str,
        namespace: str | None,
        name: str | None,
        user: TokenInfo,
    ) -> None:
        if not self.allowed(verb, resource, group, namespace):
            what = f"{resource}.{group}" if group else resource
            where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            named = f' "{name}"' if name else ""
            raise ApiError(
                403,
                "Forbidden",
                f'{what}{named} is forbidden: User "{user.username}" cannot {verb} resource '
                f'"{resource}" in API group "{group}"{where}',
                {"name": name or "", "group": group, "kind": resource},
            )

    def token_request(
        self, namespace: str, service_account: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        """Mint a token for a ServiceAccount (TokenRequest) that TokenReview will accept."""
        spec = request.get("spec") or {}
        audiences = tuple(spec.get("audiences") or ())
        token = f"sa.{namespace}.{service_account}.{secrets.token_urlsafe(16)}"
        self.register_token(
            token,
            f"system:serviceaccount:{namespace}:{service_account}",
            (
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ),
            audiences,
        )
        expires = datetime.now(UTC) + timedelta(seconds=int(spec.get("expirationSeconds") or 3600))
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": service_account, "namespace": namespace},
            "spec": {**spec, "audiences": list(audiences)},
            "status": {
                "token": token,
                "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }

    def access_review(self, review: dict[str, Any]) -> dict[str, Any]:
        attrs = (review.get("spec") or {}).get("resourceAttributes") or {}
        allowed = self.allowed(
            attrs.get("verb", ""),
            attrs.get("resource", ""),
            attrs.get("group", ""),
            attrs.get("namespace") or None,
        )
        out = dict(review)
        out["status"] = {"allowed": allowed}
        if not allowed:
            out["status"]["reason"] = "denied by the test bed"
        return out

    def token_review(self, review: dict[str, Any]) -> dict[str, Any]:
        spec = review.get("spec") or {}
        with self._lock:
            info = self._tokens.get(spec.get("token") or "")
        wanted = tuple(spec.get("audiences") or ())
        out = dict(review)
        if info is None:
            out["status"] = {"authenticated": False, "error": "invalid bearer token"}
            return out
        if wanted and info.audiences and not set(wanted) & set(info.audiences):
            out["status"] = {
                "authenticated": False,
                "error": "token audiences do not match the requested audiences",
            }
            return out
        out["status"] = {
            "authenticated": True,
            "user": {"username": info.username, "groups": list(info.groups)},
            "audiences": [a for a in wanted if a in info.audiences]
            if wanted and info.audiences
            else list(wanted or info.audiences),
        }
        return out
