"""lightkube resource classes for the policy.lacewing.io kinds the policy controller watches.

The CRDs are lacewing's own (`lacewing.install.crds`), so lightkube has no model for them:
each is a generic namespaced resource (objects stay plain dicts). `KindWatch` looks them up
by kind name in its table, next to the built-in kinds.
"""

from __future__ import annotations

from typing import Any

from lightkube.generic_resource import create_namespaced_resource

__all__ = ["POLICY_GROUP", "POLICY_KINDS", "POLICY_VERSION"]

POLICY_GROUP = "policy.lacewing.io"
POLICY_VERSION = "v1beta1"

_PLURALS = {
    "Server": "servers",
    "AuthorizationPolicy": "authorizationpolicies",
    "MeshTLSAuthentication": "meshtlsauthentications",
    "NetworkAuthentication": "networkauthentications",
}

POLICY_KINDS: dict[str, Any] = {
    kind: create_namespaced_resource(POLICY_GROUP, POLICY_VERSION, kind, plural)
    for kind, plural in _PLURALS.items()
}
