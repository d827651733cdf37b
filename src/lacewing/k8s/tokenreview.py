"""The Kubernetes token validator: a TokenReview of the pod's projected service-account token.

The proxy sends the token kubelet projected into its pod with audience `identity.lacewing.io`.
`KubernetesValidator.validate` asks the API server about it:

    POST /apis/authentication.k8s.io/v1/tokenreviews
    {"spec": {"token": ..., "audiences": ["identity.lacewing.io"]}}

and accepts only if `status.authenticated` is true, the audiences the server confirms
include ours (a token minted for another audience is refused even if otherwise valid) and
`status.user.username` is a service account (`system:serviceaccount:NS:SA`); the identity
service then checks that NS/SA is the identity asked for.

A refusal by the API server (bad, expired, foreign token) is an answer: `TokenReview.refused`
with its reason. Not being able to ask (API unreachable, RBAC) is not: it raises
ClusterError, which the identity service answers with 503 rather than blaming the token.
The client is role B's synchronous `Cluster`, run in a worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from lacewing.core.identity import IDENTITY_AUDIENCE, TokenReview
from lacewing.k8s.cluster import Cluster

__all__ = ["KubernetesValidator", "token_review_request"]

_SA_PREFIX = "system:serviceaccount:"


def token_review_request(token: str, audience: str = IDENTITY_AUDIENCE) -> dict[str, Any]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        # Review objects are never stored and a real API server ignores their name; `Cluster`
        # wants one on every object it creates.
        "metadata": {"name": "lacewing-identity"},
        "spec": {"token": token, "audiences": [audience]},
    }


def interpret(answer: dict[str, Any], audience: str = IDENTITY_AUDIENCE) -> TokenReview:
    """Turn a TokenReview's status into our verdict (pure; tested on its own).

    Shapes are checked, not assumed: a status, user or audiences of the wrong JSON type (a
    broken API server or a proxy in front of it) is a refusal, never a TypeError.
    """
    status = answer.get("status") or {}
    if not isinstance(status, dict):
        return TokenReview.refused("the Kubernetes API answered a TokenReview without a status")
    if status.get("error"):
        return TokenReview.refused(str(status["error"]))
    if status.get("authenticated") is not True:
        return TokenReview.refused("the Kubernetes API did not authenticate the token")
    audiences = status.get("audiences")
    if audiences is not None and (not isinstance(audiences, list) or audience not in audiences):
        return TokenReview.refused(f"the token is not for audience {audience}")
    user = status.get("user")
    username = str((user if isinstance(user, dict) else {}).get("username") or "")
    if not username.startswith(_SA_PREFIX):
        return TokenReview.refused(
            f"the token is for {username or 'nobody'}, not a service account"
        )
    return TokenReview.ok(username)


@dataclass
class KubernetesValidator:
    cluster: Cluster
    audience: str = IDENTITY_AUDIENCE

    def review(self, token: str) -> TokenReview:
        """Synchronous TokenReview; raises ClusterError if the API cannot be asked."""
        return interpret(
            self.cluster.create(token_review_request(token, self.audience)), self.audience
        )

    async def validate(self, token: str) -> TokenReview:
        return await asyncio.to_thread(self.review, token)
