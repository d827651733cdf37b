"""lightkube resource classes for the route kinds the destination controller watches.

Two groups serve each kind (HTTPRoute, GRPCRoute): the Gateway API's
`gateway.networking.k8s.io/v1` (when its CRDs are installed) and our copy
`policy.lacewing.io/v1beta1` (`lacewing install --crds`). lightkube has no model for
either, so each is a generic namespaced resource (objects stay plain dicts), named in
`KindWatch`'s table by `kind.group` so the two stay apart.
"""

from __future__ import annotations

from typing import Any

from lightkube.generic_resource import create_namespaced_resource

__all__ = ["ROUTE_KINDS"]

ROUTE_KINDS: dict[str, Any] = {
    "HTTPRoute.gateway.networking.k8s.io": create_namespaced_resource(
        "gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"
    ),
    "HTTPRoute.policy.lacewing.io": create_namespaced_resource(
        "policy.lacewing.io", "v1beta1", "HTTPRoute", "httproutes"
    ),
    "GRPCRoute.gateway.networking.k8s.io": create_namespaced_resource(
        "gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes"
    ),
    "GRPCRoute.policy.lacewing.io": create_namespaced_resource(
        "policy.lacewing.io", "v1beta1", "GRPCRoute", "grpcroutes"
    ),
}
