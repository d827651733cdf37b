"""Example custom resources validate against their CRD's openAPIV3Schema (and bad ones fail)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from lacewing.install.crds import KINDS, crd_names, custom_resource_definitions


def _schema(kind: str) -> dict[str, Any]:
    for crd in custom_resource_definitions():
        if crd["spec"]["names"]["kind"] == kind:
            schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(kind)


def _cr(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    row = next(k for k in KINDS if k.kind == kind)
    return {
        "apiVersion": row.api_version,
        "kind": kind,
        "metadata": {"name": "example", "namespace": "shop"},
        "spec": spec,
    }


GOOD: list[tuple[str, dict[str, Any]]] = [
    ("Server", {"podSelector": {"matchLabels": {"app": "web"}}, "port": "http",
                "proxyProtocol": "HTTP/1"}),
    ("Server", {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In",
                                                      "values": ["a", "b"]}]}, "port": 8080}),
    ("AuthorizationPolicy", {
        "targetRef": {"group": "policy.lacewing.io", "kind": "Server", "name": "web"},
        "requiredAuthenticationRefs": [
            {"group": "policy.lacewing.io", "kind": "MeshTLSAuthentication", "name": "clients"}]}),
    ("MeshTLSAuthentication", {"identities": ["*.shop.serviceaccount.identity.lacewing.local"]}),
    ("MeshTLSAuthentication", {"identityRefs": [{"kind": "ServiceAccount", "name": "frontend"}]}),
    ("NetworkAuthentication", {"networks": [{"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}]}),
    ("HTTPRoute", {
        "parentRefs": [{"group": "policy.lacewing.io", "kind": "Server", "name": "web"}],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET"}],
                   "timeouts": {"request": "10s"}}]}),
    ("HTTPRoute", {  # attached to a Service: a split with filters (docs/traffic.md)
        "parentRefs": [{"group": "", "kind": "Service", "name": "web", "port": 8080}],
        "rules": [{"backendRefs": [{"name": "web", "port": 8080, "weight": 90},
                                   {"name": "web-canary", "port": 8080, "weight": 10}],
                   "filters": [{"type": "RequestHeaderModifier",
                                "requestHeaderModifier": {"set": [{"name": "x", "value": "1"}]}},
                               {"type": "FaultInjection", "faultInjection": {
                                   "abort": {"percent": 10, "httpStatus": 503}}}]}]}),
    ("GRPCRoute", {  # a gRPC method to a canary (docs/traffic.md)
        "parentRefs": [{"group": "", "kind": "Service", "name": "greeter", "port": 50051}],
        "rules": [{"matches": [{"method": {"service": "hello.Greeter", "method": "SayHello"},
                                "headers": [{"name": "x-canary", "value": "yes"}]}],
                   "backendRefs": [{"name": "greeter-canary", "port": 50051, "weight": 1}]}]}),
    ("ServiceProfile", {
        "routes": [{"name": "GET /books", "condition": {"method": "GET", "pathRegex": "/books",
                                                        "all": [{"method": "GET"}]},
                    "isRetryable": True, "timeout": "300ms",
                    "responseClasses": [{"condition": {"status": {"min": 500, "max": 599}},
                                         "isFailure": True}]}],
        "retryBudget": {"retryRatio": 0.2, "minRetriesPerSecond": 10, "ttl": "10s"}}),
]  # fmt: skip

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("Server", {"podSelector": {}}, "'port' is a required property"),
    ("Server", {"podSelector": {}, "port": 80, "proxyProtocol": "HTTP/3"}, "is not one of"),
    ("AuthorizationPolicy", {"targetRef": {"kind": "Server"}, "requiredAuthenticationRefs": []},
     "'name' is a required property"),
    ("MeshTLSAuthentication", {}, "is not valid under any of the given schemas"),
    ("MeshTLSAuthentication", {"identities": []}, "should be non-empty"),
    ("NetworkAuthentication", {"networks": [{"except": ["1.2.3.4/32"]}]}, "'cidr' is a required"),
    ("HTTPRoute", {"rules": [{"timeouts": {"request": "soon"}}]}, "does not match"),
    ("GRPCRoute", {"rules": [{"matches": [{"method": {"type": "Prefix"}}]}]}, "is not one of"),
    ("ServiceProfile", {"routes": [{"name": "x"}]}, "'condition' is a required property"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "spec"), GOOD, ids=[k for k, _ in GOOD])
def test_examples_validate(kind: str, spec: dict[str, Any]) -> None:
    jsonschema.validate(_cr(kind, spec), _schema(kind))


@pytest.mark.parametrize(("kind", "spec", "message"), BAD, ids=[k for k, _, _ in BAD])
def test_bad_examples_are_refused(kind: str, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(jsonschema.ValidationError, match=message):
        jsonschema.validate(_cr(kind, spec), _schema(kind))


def test_the_kinds_the_issue_lists() -> None:
    assert crd_names() == [
        "servers.policy.lacewing.io",
        "authorizationpolicies.policy.lacewing.io",
        "meshtlsauthentications.policy.lacewing.io",
        "networkauthentications.policy.lacewing.io",
        "httproutes.policy.lacewing.io",
        "grpcroutes.policy.lacewing.io",
        "serviceprofiles.lacewing.io",
    ]


def _walk(schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths breaking the structural-schema rule: every node needs a type (or int-or-string)."""
    bad = []
    if "type" not in schema and not schema.get("x-kubernetes-int-or-string"):
        bad.append(path or "/")
    for name, child in (schema.get("properties") or {}).items():
        bad += _walk(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        bad += _walk(schema["items"], f"{path}[]")
    return bad


def test_schemas_are_structural() -> None:
    for kind in KINDS:
        assert _walk(_schema(kind.kind)) == [], kind.kind
