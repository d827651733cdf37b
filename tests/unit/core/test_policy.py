"""Policy resources' validation messages, networks, identity matchers, defaults, wire form."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lacewing.core.policy import (
    DEFAULT_POLICIES,
    Authorization,
    IdentityMatch,
    Network,
    PolicyError,
    PortPolicy,
    default_port_policy,
    evaluate,
    parse_networks,
    policy_from_dict,
    policy_to_dict,
    resolve_default_policy,
)
from lacewing.core.policy_index import PolicyConfig, PolicyIndex, pod_from_object
from lacewing.core.policy_resources import (
    AuthorizationPolicy,
    MeshTLSAuthentication,
    NetworkAuthentication,
    Server,
    parse_resource,
)

ANNOTATION = "config.lacewing.io/default-inbound-policy"


def obj(kind: str, spec: Any, name: str = "x", ns: str | None = "shop") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    return {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": kind,
        "metadata": meta,
        "spec": spec,
    }


SEL = {"matchLabels": {"app": "web"}}


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (obj("Server", {"podSelector": SEL, "port": 70000}, "web"),
         "Server shop/web: spec.port: 70000 is not a port number (1-65535) or a port name"),
        (obj("Server", {"podSelector": SEL, "port": 0}, "web"), "spec.port: 0 is not a port"),
        (obj("Server", {"podSelector": SEL, "port": "Http_Port"}, "web"),
         "spec.port: 'Http_Port' is not a port number (1-65535) or a port name"),
        (obj("Server", {"podSelector": SEL, "port": "8080"}, "web"), "'8080' is not a port"),
        (obj("Server", {"port": 80}, "web"), "Server shop/web: spec.podSelector: is required"),
        (obj("Server", {"podSelector": SEL, "port": 80, "proxyProtocol": "http"}, "web"),
         "spec.proxyProtocol: 'http' is not one of unknown, HTTP/1, HTTP/2, gRPC, opaque, TLS"),
        (obj("Server", {"podSelector": SEL, "port": 80, "accessPolicy": "allow"}, "web"),
         "spec.accessPolicy: 'allow' is not one of"),
        (obj("Server", {"podSelector": {"matchExpressions": [
            {"key": "app", "operator": "Is", "values": ["a"]}]}, "port": 80}, "web"),
         "spec.podSelector.matchExpressions[0].operator: 'Is' is not one of"),
        (obj("Server", {"podSelector": SEL, "port": 80}, "web", ns=None),
         "Server web: metadata.namespace: is required"),
        (obj("AuthorizationPolicy", {"targetRef": {"kind": "Service", "name": "web"},
                                     "requiredAuthenticationRefs": []}, "a"),
         "AuthorizationPolicy shop/a: spec.targetRef.kind: 'Service': target a Server"),
        (obj("AuthorizationPolicy", {"targetRef": {"kind": "Namespace", "name": "other"},
                                     "requiredAuthenticationRefs": [
                                         {"kind": "ServiceAccount", "name": "a"}]}, "a"),
         "spec.targetRef.name: a Namespace target must be the policy's own (shop)"),
        (obj("AuthorizationPolicy", {"targetRef": {"kind": "Server", "name": "web"},
                                     "requiredAuthenticationRefs": []}, "a"),
         "spec.requiredAuthenticationRefs: at least one authentication is required"),
        (obj("AuthorizationPolicy", {"targetRef": {"kind": "Server", "name": "web"},
                                     "requiredAuthenticationRefs": [
                                         {"kind": "ServiceAccount", "name": "a"},
                                         {"kind": "MeshTLSAuthentication", "name": "b"}]}, "a"),
         "at most one MeshTLSAuthentication or ServiceAccount"),
        (obj("AuthorizationPolicy", {"targetRef": {"kind": "Server", "name": "web",
                                                   "group": "policy.linkerd.io"},
                                     "requiredAuthenticationRefs": [
                                         {"kind": "ServiceAccount", "name": "a"}]}, "a"),
         "spec.targetRef.group: Server lives in policy.lacewing.io, not 'policy.linkerd.io'"),
        (obj("AuthorizationPolicy", {"targetRef": {"kind": "Server", "name": "web"},
                                     "requiredAuthenticationRefs": [
                                         {"kind": "Secret", "name": "a"}]}, "a"),
         "spec.requiredAuthenticationRefs[0].kind: 'Secret': use MeshTLSAuthentication"),
        (obj("MeshTLSAuthentication", {"identities": ["web.*.serviceaccount"]}, "m"),
         "MeshTLSAuthentication shop/m: spec.identities[0]: 'web.*.serviceaccount'"),
        (obj("MeshTLSAuthentication", {}, "m"), "list at least one of identities or identityRefs"),
        (obj("MeshTLSAuthentication", {"identityRefs": [{"kind": "Pod", "name": "p"}]}, "m"),
         "spec.identityRefs[0].kind: 'Pod': use ServiceAccount or Namespace"),
        (obj("NetworkAuthentication", {"networks": [{"cidr": "10.0.0.0/33"}]}, "n"),
         "NetworkAuthentication shop/n: spec.networks[0].cidr: '10.0.0.0/33' is not an IP"),
        (obj("NetworkAuthentication", {"networks": [
            {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}]}, "n"),
         "spec.networks[0].except[0]: 10.1.0.0/24 is not inside 10.0.0.0/16"),
        (obj("NetworkAuthentication", {"networks": []}, "n"), "list at least one network"),
        ({**obj("Server", {"podSelector": SEL, "port": 80}), "apiVersion": "policy.linkerd.io/v1"},
         "Server shop/x: apiVersion: 'policy.linkerd.io/v1': expected policy.lacewing.io/"),
    ],
)  # fmt: skip
def test_invalid_resources_get_one_line_naming_resource_and_field(
    resource: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyError) as info:
        parse_resource(resource)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_valid_resources_parse_to_models() -> None:
    srv = parse_resource(
        obj("Server", {"podSelector": SEL, "port": "http", "proxyProtocol": "gRPC"}, "web")
    )
    assert isinstance(srv, Server) and srv.port == "http" and srv.protocol == "gRPC"
    assert srv.access_policy == "deny"  # Linkerd's default for a Server
    ap = parse_resource(
        obj(
            "AuthorizationPolicy",
            {
                "targetRef": {"group": "policy.lacewing.io", "kind": "Server", "name": "web"},
                "requiredAuthenticationRefs": [
                    {"kind": "ServiceAccount", "name": "bot", "namespace": "ops"},
                    {"group": "policy.lacewing.io", "kind": "NetworkAuthentication", "name": "n"},
                ],
            },
        )
    )
    assert isinstance(ap, AuthorizationPolicy) and len(ap.authentications) == 2
    m = parse_resource(obj("MeshTLSAuthentication", {"identities": ["*", "*.ops.x", "a.b.c"]}))
    assert isinstance(m, MeshTLSAuthentication)
    assert m.identities == (
        IdentityMatch(),
        IdentityMatch(suffix=".ops.x"),
        IdentityMatch(exact="a.b.c"),
    )
    n = parse_resource(obj("NetworkAuthentication", {"networks": [{"cidr": "fd00::/8"}]}))
    assert isinstance(n, NetworkAuthentication) and str(n.networks[0].cidr) == "fd00::/8"


def test_networks_with_except_and_families() -> None:
    net = Network.parse("10.42.0.0/16", ["10.42.9.0/24"])
    import ipaddress

    assert net.contains(ipaddress.ip_address("10.42.0.1"))
    assert not net.contains(ipaddress.ip_address("10.42.9.1"))
    assert not net.contains(ipaddress.ip_address("10.43.0.1"))
    assert not net.contains(ipaddress.ip_address("fd00::1"))
    assert [str(n.cidr) for n in parse_networks("10.0.0.0/8, fd00::/8")] == [
        "10.0.0.0/8",
        "fd00::/8",
    ]
    with pytest.raises(PolicyError, match=r"--cluster-networks\[1\].cidr: 'nope'"):
        parse_networks("10.0.0.0/8,nope")


def test_ipv4_mapped_client_addresses_match_ipv4_networks() -> None:
    policy = default_port_policy(80, "cluster-unauthenticated", parse_networks("10.0.0.0/8"))
    assert evaluate(policy, None, "::ffff:10.1.2.3").allowed
    assert not evaluate(policy, None, "not-an-ip").allowed


def test_resolve_default_policy_order_and_bad_values() -> None:
    assert resolve_default_policy("deny").name == "deny"
    got = resolve_default_policy(
        "all-unauthenticated",
        {ANNOTATION: "cluster-authenticated"},
        {ANNOTATION: "all-authenticated"},
        {ANNOTATION: "nonsense"},
    )
    assert (got.name, got.source) == ("all-authenticated", "workload")
    assert "pod annotation" in got.problems[0] and "'nonsense'" in got.problems[0]
    with pytest.raises(PolicyError, match="unknown default policy 'open'"):
        resolve_default_policy("open")


@pytest.mark.parametrize("name", DEFAULT_POLICIES)
def test_every_default_policy_round_trips_on_the_wire(name: str) -> None:
    policy = default_port_policy(
        8080, name, parse_networks("10.0.0.0/8"), probe_paths=["/ready", "/live"]
    )
    wire = json.loads(json.dumps(policy_to_dict(policy)))
    assert policy_from_dict(wire) == policy


def test_compiled_server_policy_round_trips_on_the_wire() -> None:
    policy = PortPolicy(
        8080,
        "server",
        "web-http",
        "HTTP/2",
        (
            Authorization(
                "authorizationpolicy",
                "a",
                (Network.parse("10.0.0.0/8", ["10.1.0.0/16"]),),
                False,
                (IdentityMatch(exact="a.b"), IdentityMatch(suffix=".ops.x"), IdentityMatch()),
            ),
        ),
        audit=True,
        probe_paths=("/ready",),
    )
    assert policy_from_dict(json.loads(json.dumps(policy_to_dict(policy)))) == policy


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(port=0), "policy.port"),
        (lambda d: d.update(protocol="h3"), "policy.protocol: 'h3'"),
        (lambda d: d["authorizations"][0].update(identities=[{"regex": "x"}]), "identities[0]"),
        (lambda d: d["authorizations"][0]["networks"][0].update(cidr="x"), "networks[0].cidr"),
        (lambda d: d.update(audit="yes"), "policy.audit: expected bool"),
        (lambda d: d.pop("server"), "policy.server: expected dict"),
    ],
)
def test_wire_parse_errors_name_the_field(mutate: Any, message: str) -> None:
    data = policy_to_dict(
        default_port_policy(80, "cluster-authenticated", parse_networks("10.0.0.0/8"))
    )
    mutate(data)
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        policy_from_dict(data)


def test_pod_ports_and_probe_paths_resolve_named_ports() -> None:
    pod = pod_from_object(
        {
            "metadata": {"name": "p", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "livenessProbe": {"httpGet": {"port": 8080, "path": "/live"}},
                        "readinessProbe": {"httpGet": {"port": "http", "path": "/ready"}},
                        "startupProbe": {"tcpSocket": {"port": 8080}},
                    },
                    {"ports": [{"containerPort": 9000}]},
                ]
            },
        }
    )
    assert pod.ports == (("http", 8080), ("", 9000))
    assert pod.probes == ((8080, "/live"), (8080, "/ready"))


def test_unknown_pod_has_no_policy_and_oldest_server_wins() -> None:
    pod = pod_from_object(
        {
            "metadata": {"name": "p", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
        }
    )
    old = obj("Server", {"podSelector": SEL, "port": 8080}, "zz-old")
    old["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    new = obj("Server", {"podSelector": {}, "port": "http"}, "aa-new")
    new["metadata"]["creationTimestamp"] = "2026-02-01T00:00:00Z"
    index = PolicyIndex((parse_resource(new), parse_resource(old)), (pod,), {}, PolicyConfig())
    assert index.port_policy("shop", "nope", 8080) is None
    policy = index.port_policy("shop", "p", 8080)
    assert policy is not None and policy.server_name == "zz-old"
    # A Server's port by number only counts when the pod declares it (as Linkerd).
    undeclared = PolicyIndex(
        (parse_resource(obj("Server", {"podSelector": SEL, "port": 7000}, "s")),), (pod,)
    )
    policy = undeclared.port_policy("shop", "p", 7000)
    assert policy is not None and policy.server_kind == "default"


def test_malformed_pod_fields_are_skipped_not_fatal() -> None:
    pod = pod_from_object(
        {
            "metadata": {"name": "p", "namespace": "shop", "labels": "nope"},
            "spec": {
                "containers": [
                    "nope",
                    {
                        "ports": [{"containerPort": "80"}, "x", {"containerPort": 8080}],
                        "livenessProbe": {"httpGet": {"port": {"weird": 1}, "path": "/l"}},
                        "readinessProbe": {"httpGet": {"port": "missing", "path": "/r"}},
                        "startupProbe": {"httpGet": {"port": "8080", "path": "/s"}},
                    },
                ]
            },
        }
    )
    assert pod.labels == {} and pod.ports == (("", 8080),)
    assert pod.probes == ((8080, "/s"),)
