"""The policy matrix: Kubernetes dicts -> parse -> PolicyIndex -> PortPolicy -> evaluate.

Every row is a cluster (resources, annotations, install default), a client (identity or
unmeshed, source IP, optionally an HTTP request) and what a user would expect the proxy of
pod shop/web-0 port 8080 to decide, with the labels its metrics would carry. The pipeline is
the one the controller and the proxy run; nothing in between is mocked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from lacewing.core.policy import DEFAULT_POLICIES, Decision, evaluate, parse_networks
from lacewing.core.policy_index import PolicyConfig, PolicyIndex, pod_from_object
from lacewing.core.policy_resources import parse_resource

TD = "cluster.local"
BOT = f"bot.shop.serviceaccount.identity.lacewing.{TD}"
EVIL = f"evil.shop.serviceaccount.identity.lacewing.{TD}"
OPS = f"prometheus.ops.serviceaccount.identity.lacewing.{TD}"
POD_IP = "10.42.0.5"  # inside the cluster networks
EXCEPTED_IP = "10.42.9.9"  # inside 10.42.0.0/16 but in its except 10.42.9.0/24
OUTSIDE_IP = "203.0.113.7"  # outside every cluster network
ANNOTATION = "config.lacewing.io/default-inbound-policy"

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {
        "containers": [
            {
                "name": "web",
                "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9000}],
                "readinessProbe": {"httpGet": {"port": "http", "path": "/ready"}},
            }
        ]
    },
}


def server(name: str = "web-http", port: Any = "http", access: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": {"app": "web"}}, "port": port}
    if access:
        spec["accessPolicy"] = access
    return {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": "Server",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


def authz(name: str, *refs: tuple[str, str], target: tuple[str, str] = ("Server", "web-http")):
    target_ref = {"kind": target[0], "name": target[1]}
    if target[0] == "Server":
        target_ref["group"] = "policy.lacewing.io"
    required = []
    for kind, ref_name in refs:
        ref = {"kind": kind, "name": ref_name}
        if kind != "ServiceAccount":
            ref["group"] = "policy.lacewing.io"
        required.append(ref)
    return {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"targetRef": target_ref, "requiredAuthenticationRefs": required},
    }


def mesh(name: str, identities: list[str] | None = None, refs: list[dict[str, str]] | None = None):
    spec: dict[str, Any] = {}
    if identities:
        spec["identities"] = identities
    if refs:
        spec["identityRefs"] = refs
    return {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": "MeshTLSAuthentication",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


def networks(name: str, *nets: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": "NetworkAuthentication",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"networks": list(nets)},
    }


BOT_ONLY = [server(), authz("bot-in", ("MeshTLSAuthentication", "bot")), mesh("bot", [BOT])]
SA_BOT = [server(), authz("bot-sa", ("ServiceAccount", "bot"))]
INTERNAL = [
    server(),
    authz("internal", ("NetworkAuthentication", "pods")),
    networks("pods", {"cidr": "10.42.0.0/16", "except": ["10.42.9.0/24"]}),
]
BOT_FROM_PODS = [
    server(),
    authz("bot-pods", ("MeshTLSAuthentication", "bot"), ("NetworkAuthentication", "pods")),
    mesh("bot", [BOT]),
    networks("pods", {"cidr": "10.42.0.0/16"}),
]


@dataclass(frozen=True)
class Case:
    name: str
    identity: str | None
    ip: str
    allowed: bool
    authz: str = ""
    srv: str = "all-unauthenticated"
    resources: list[dict[str, Any]] = field(default_factory=list)
    install: str = "all-unauthenticated"
    ns_policy: str | None = None
    pod_policy: str | None = None
    audit_denied: bool = False
    port: int = 8080
    request: tuple[str, str] | None = None


CASES = [
    # default policies, no Server
    Case("all-unauth unmeshed outside", None, OUTSIDE_IP, True, "all-unauthenticated"),
    Case("all-auth meshed outside", BOT, OUTSIDE_IP, True, "all-authenticated",
         "all-authenticated", install="all-authenticated"),
    Case("all-auth unmeshed", None, POD_IP, False, "", "all-authenticated",
         install="all-authenticated"),
    Case("cluster-unauth unmeshed inside", None, POD_IP, True, "cluster-unauthenticated",
         "cluster-unauthenticated", install="cluster-unauthenticated"),
    Case("cluster-unauth unmeshed outside", None, OUTSIDE_IP, False, "",
         "cluster-unauthenticated", install="cluster-unauthenticated"),
    Case("cluster-auth meshed inside", EVIL, POD_IP, True, "cluster-authenticated",
         "cluster-authenticated", install="cluster-authenticated"),
    Case("cluster-auth meshed outside", BOT, OUTSIDE_IP, False, "", "cluster-authenticated",
         install="cluster-authenticated"),
    Case("cluster-auth unmeshed inside", None, POD_IP, False, "", "cluster-authenticated",
         install="cluster-authenticated"),
    Case("deny meshed", BOT, POD_IP, False, "", "deny", install="deny"),
    Case("deny still admits the kubelet probe", None, "10.42.0.1", True, "probe", "deny",
         install="deny", request=("GET", "/ready")),
    Case("deny: probe path on POST is not a probe", None, POD_IP, False, "", "deny",
         install="deny", request=("POST", "/ready")),
    Case("audit admits and flags", None, OUTSIDE_IP, True, "audit", "audit", install="audit",
         audit_denied=True),
    Case("namespace annotation overrides install", None, POD_IP, False, "", "deny",
         ns_policy="deny"),
    Case("pod annotation overrides namespace", None, POD_IP, True, "all-unauthenticated",
         ns_policy="deny", pod_policy="all-unauthenticated"),
    Case("bad pod annotation falls back to namespace", None, POD_IP, False, "", "deny",
         ns_policy="deny", pod_policy="allow-everyone"),
    # a Server with its authorizations
    Case("server without authorization denies", BOT, POD_IP, False, "", "web-http",
         [server()]),
    Case("server: other port keeps the default", None, POD_IP, True, "all-unauthenticated",
         resources=[server()], port=9000),
    Case("meshtls right identity", BOT, POD_IP, True, "bot-in", "web-http", BOT_ONLY),
    Case("meshtls wrong identity", EVIL, POD_IP, False, "", "web-http", BOT_ONLY),
    Case("meshtls unmeshed", None, POD_IP, False, "", "web-http", BOT_ONLY),
    Case("serviceaccount ref right", BOT, POD_IP, True, "bot-sa", "web-http", SA_BOT),
    Case("serviceaccount ref wrong", EVIL, POD_IP, False, "", "web-http", SA_BOT),
    Case("meshtls `*` admits any meshed", EVIL, OUTSIDE_IP, True, "any", "web-http",
         [server(), authz("any", ("MeshTLSAuthentication", "m")), mesh("m", ["*"])]),
    Case("meshtls `*.ops...` suffix", OPS, POD_IP, True, "ops", "web-http",
         [server(), authz("ops", ("MeshTLSAuthentication", "m")),
          mesh("m", [f"*.ops.serviceaccount.identity.lacewing.{TD}"])]),
    Case("meshtls namespace identityRef", OPS, POD_IP, True, "ops", "web-http",
         [server(), authz("ops", ("MeshTLSAuthentication", "m")),
          mesh("m", refs=[{"kind": "Namespace", "name": "ops"}])]),
    Case("meshtls serviceaccount identityRef in another ns", OPS, POD_IP, True, "ops",
         "web-http", [server(), authz("ops", ("MeshTLSAuthentication", "m")),
                      mesh("m", refs=[{"kind": "ServiceAccount", "name": "prometheus",
                                       "namespace": "ops"}])]),
    Case("network inside cidr, unmeshed", None, POD_IP, True, "internal", "web-http", INTERNAL),
    Case("network in except", None, EXCEPTED_IP, False, "", "web-http", INTERNAL),
    Case("network outside", BOT, OUTSIDE_IP, False, "", "web-http", INTERNAL),
    Case("identity AND network: both hold", BOT, POD_IP, True, "bot-pods", "web-http",
         BOT_FROM_PODS),
    Case("identity AND network: right identity, wrong network", BOT, OUTSIDE_IP, False, "",
         "web-http", BOT_FROM_PODS),
    Case("missing MeshTLSAuthentication fails closed", BOT, POD_IP, False, "", "web-http",
         [server(), authz("bot-in", ("MeshTLSAuthentication", "nope"))]),
    Case("namespace-targeted policy applies to the Server", BOT, POD_IP, True, "ns-wide",
         "web-http", [server(), authz("ns-wide", ("ServiceAccount", "bot"),
                                      target=("Namespace", "shop"))]),
    Case("HTTPRoute-targeted policy authorizes nothing yet", BOT, POD_IP, False, "", "web-http",
         [server(), authz("route", ("ServiceAccount", "bot"), target=("HTTPRoute", "r"))]),
    Case("server accessPolicy audit flags the wrong identity", EVIL, POD_IP, True, "audit",
         "web-http", [server(access="audit"), *BOT_ONLY[1:]], audit_denied=True),
    Case("server accessPolicy audit: right identity is a plain allow", BOT, POD_IP, True,
         "bot-in", "web-http", [server(access="audit"), *BOT_ONLY[1:]]),
    Case("server accessPolicy all-unauthenticated", None, OUTSIDE_IP, True,
         "all-unauthenticated", "web-http", [server(access="all-unauthenticated")]),
    Case("server by port number", BOT, POD_IP, True, "bot-sa", "web-http",
         [server(port=8080), authz("bot-sa", ("ServiceAccount", "bot"))]),
    Case("server: kubelet probe on a Server without routes", None, "10.42.0.1", True, "probe",
         "web-http", [server()], request=("GET", "/ready?verbose=1")),
    Case("server: a non-probe path is denied", None, "10.42.0.1", False, "", "web-http",
         [server()], request=("GET", "/admin")),
]  # fmt: skip


def decide(case: Case) -> Decision:
    pod = {**POD, "metadata": {**POD["metadata"]}}
    if case.pod_policy:
        pod["metadata"]["annotations"] = {ANNOTATION: case.pod_policy}
    namespaces = {"shop": {ANNOTATION: case.ns_policy} if case.ns_policy else {}}
    config = PolicyConfig(case.install, parse_networks("10.0.0.0/8,192.168.0.0/16"), TD)
    index = PolicyIndex(
        tuple(parse_resource(r) for r in case.resources),
        (pod_from_object(pod),),
        namespaces,
        config,
    )
    policy = index.port_policy("shop", "web-0", case.port)
    assert policy is not None
    method, path = case.request or (None, None)
    return evaluate(policy, case.identity, case.ip, method=method, path=path)


def test_the_matrix_has_at_least_twenty_rows() -> None:
    assert len(CASES) >= 20
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matrix(case: Case) -> None:
    decision = decide(case)
    assert decision.allowed is case.allowed
    assert decision.audit_denied is case.audit_denied
    assert decision.srv_name == case.srv
    assert decision.srv_kind == ("server" if case.resources and case.port == 8080 else "default")
    assert decision.authz_name == case.authz
    if not case.authz:
        expected_kind = ""
    elif case.authz in ("probe", "audit", *DEFAULT_POLICIES):
        expected_kind = "default"
    else:
        expected_kind = "authorizationpolicy"
    assert decision.authz_kind == expected_kind
