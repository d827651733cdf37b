"""Kubernetes objects -> Directory: readiness, identity, workload, opaque ports (pure)."""

from __future__ import annotations

import json
from typing import Any

from lacewing.controller.destination import directory_from_objects
from lacewing.controller.destination.kubernetes import parse_port_ranges
from lacewing.core.discovery import parse_authority


def pod(name: str, ip: str, *, meshed: bool = True, owner: str | None = None) -> dict[str, Any]:
    labels = {"app": "web", "pod-template-hash": "5d9c"}
    if meshed:
        labels["lacewing.io/control-plane-ns"] = "lacewing"
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner}]
    return {"metadata": meta, "spec": {"serviceAccountName": "web"}, "status": {"podIP": ip}}


SERVICE = {
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "annotations": {"config.lacewing.io/opaque-ports": "9000-9001"},
    },
    "spec": {
        "clusterIP": "10.43.0.10",
        "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "raw", "port": 9000, "targetPort": 9000},
        ],
    },
}


def slice_of(*endpoints: tuple[str, str, bool | None]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web-abcde",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "ports": [{"name": "http", "port": 8080}, {"name": "raw", "port": 9000}],
        "endpoints": [
            {
                "addresses": [ip],
                "conditions": {} if ready is None else {"ready": ready},
                "targetRef": {"kind": "Pod", "name": name, "namespace": "shop"},
            }
            for name, ip, ready in endpoints
        ],
    }


def test_ready_endpoints_with_identity_workload_and_resolved_named_ports() -> None:
    directory = directory_from_objects(
        [SERVICE],
        [
            slice_of(
                ("web-1", "10.42.0.1", True),
                ("web-2", "10.42.0.2", None),
                ("web-3", "10.42.0.3", False),
            )
        ],
        [
            pod("web-1", "10.42.0.1", owner="web-5d9c"),
            pod("web-2", "10.42.0.2", meshed=False),
            pod("web-3", "10.42.0.3"),
        ],
    )
    exists, endpoints = directory.resolve(parse_authority("web.shop:80"))
    assert exists
    got = [(e.address, e.port, e.identity, e.opaque) for e in endpoints.sorted()]
    assert got == [
        ("10.42.0.1", 8080, "web.shop.serviceaccount.identity.lacewing.cluster.local", False),
        ("10.42.0.2", 8080, None, False),  # not meshed: no identity; unready web-3 left out
    ]
    assert endpoints.sorted()[0].labels["deployment"] == "web"  # ReplicaSet web-5d9c -> web
    raw = directory.resolve(parse_authority("10.43.0.10:9000"))[1].sorted()
    assert [e.opaque for e in raw] == [True, True]


def test_an_endpoint_whose_pod_is_gone_is_not_served() -> None:
    slices = [slice_of(("web-1", "10.42.0.1", True), ("gone", "10.42.0.9", True))]
    directory = directory_from_objects([SERVICE], slices, [pod("web-1", "10.42.0.1")])
    endpoints = directory.resolve(parse_authority("web.shop:80"))[1]
    assert [e.address for e in endpoints.sorted()] == ["10.42.0.1"]


def test_opaque_port_annotation_forms() -> None:
    assert parse_port_ranges("3306, 5000-5002,x,9-8") == {3306, 5000, 5001, 5002}
    assert parse_port_ranges("") == frozenset()


def test_ports_the_pod_skips_inbound_are_announced_without_identity() -> None:
    """The app answers a skipped port itself: a client's mesh mTLS must not be sent there."""
    skipping = pod("web-1", "10.42.0.1")
    skipping["metadata"]["annotations"] = {"config.lacewing.io/skip-inbound-ports": "9000"}
    slices = [slice_of(("web-1", "10.42.0.1", True))]
    directory = directory_from_objects([SERVICE], slices, [skipping])
    http = directory.resolve(parse_authority("web.shop:80"))[1].sorted()
    raw = directory.resolve(parse_authority("web.shop:9000"))[1].sorted()
    assert http[0].identity == "web.shop.serviceaccount.identity.lacewing.cluster.local"
    assert raw[0].identity is None
    by_pod_ip = directory.resolve(parse_authority("10.42.0.1:9000"))[1].sorted()
    assert by_pod_ip[0].identity is None
    skipping["spec"]["containers"] = [
        {"name": "lacewing-proxy", "ports": [{"name": "lacewing-admin", "containerPort": 4191}]}
    ]
    directory = directory_from_objects([SERVICE], slices, [skipping])
    admin = directory.resolve(parse_authority("10.42.0.1:4191"))[1].sorted()
    assert admin[0].identity is None  # Prometheus scraping a meshed pod's admin port
    app = directory.resolve(parse_authority("10.42.0.1:8080"))[1].sorted()
    assert app[0].identity is not None


def test_httproutes_of_both_groups_attach_to_services_and_bad_ones_get_a_reason() -> None:
    svc = {
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"clusterIP": "10.43.0.10", "ports": [{"name": "http", "port": 80}]},
    }

    def http_route(name: str, group: str, backend: str) -> dict[str, Any]:
        return {"apiVersion": f"{group}/v1", "kind": "HTTPRoute",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"parentRefs": [{"kind": "Service", "name": "web"}],
                         "rules": [{"backendRefs": [{"name": backend, "port": 80}]}]}}  # fmt: skip

    from lacewing.controller.destination.kubernetes import directory_and_verdicts

    gateway, ours = "gateway.networking.k8s.io", "policy.lacewing.io"
    routes = [http_route("a", gateway, "web"), http_route("b", ours, "web"),
              http_route("c", gateway, "missing")]  # fmt: skip
    directory, verdicts = directory_and_verdicts([svc], [], [], routes=routes)
    served = directory.routes_for(parse_authority("10.43.0.10:80"))
    assert [json.loads(t)["metadata"]["name"] for t in served] == ["a", "b"]
    rejected = [(v.name, v.reason, v.message) for v in verdicts if not v.accepted]
    missing = "spec.rules[0].backendRefs[0]: Service shop/missing port 80 does not exist"
    assert rejected == [("c", "BackendNotFound", missing)]


def test_grpcroutes_of_both_groups_are_watched_and_served() -> None:
    from dataclasses import dataclass

    from lacewing.controller.destination.kubernetes import KubernetesSource

    @dataclass
    class Ev:
        type: str
        kind: str
        object: dict[str, Any]

        @property
        def key(self) -> tuple[str, str]:
            meta = self.object.get("metadata") or {}
            return (meta.get("namespace", ""), meta.get("name", ""))

    svc = {
        "metadata": {"name": "greeter", "namespace": "shop"},
        "spec": {"clusterIP": "10.43.0.11", "ports": [{"name": "grpc", "port": 50051}]},
    }

    def grpc_route(name: str, group: str) -> dict[str, Any]:
        return {"apiVersion": f"{group}/v1", "kind": "GRPCRoute",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"parentRefs": [{"kind": "Service", "name": "greeter"}],
                         "rules": [{"matches": [{"method": {"service": "hello.Greeter"}}]}]},
                }  # fmt: skip

    published: list[Any] = []
    source = KubernetesSource({}, published.append)
    assert "GRPCRoute.gateway.networking.k8s.io" in source.ROUTE_KINDS
    source.apply(Ev("ADDED", "Service", svc))
    source.apply(Ev("ADDED", "GRPCRoute.gateway.networking.k8s.io",
                    grpc_route("a", "gateway.networking.k8s.io")))  # fmt: skip
    source.apply(Ev("ADDED", "GRPCRoute.policy.lacewing.io", grpc_route("b", "policy.lacewing.io")))
    for kind in KubernetesSource.KINDS:
        source.apply(Ev("SYNCED", kind, {}))
    served = source.directory().routes_for(parse_authority("10.43.0.11:50051"))
    assert [(json.loads(t)["kind"], json.loads(t)["metadata"]["name"]) for t in served] == [
        ("GRPCRoute", "a"), ("GRPCRoute", "b")]  # fmt: skip
