"""destination leaves routes whose parents are all Servers to inbound policy (no verdict)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lacewing.controller.destination.kubernetes import KubernetesSource


@dataclass
class Event:
    type: str
    kind: str
    object: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        meta = self.object["metadata"]
        return meta.get("namespace", ""), meta["name"]


def route(name: str, *parents: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "creationTimestamp": "2026-12-07T00:00:00Z",
        },
        "spec": {
            "parentRefs": list(parents),
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}],
        },
    }


SERVER = {"group": "policy.lacewing.io", "kind": "Server", "name": "web-http"}
SERVICE = {"kind": "Service", "name": "web", "port": 80}


def test_only_routes_with_a_service_parent_get_destination_verdicts() -> None:
    verdicts: list[Any] = []
    statuses: list[str] = []
    source = KubernetesSource(
        {}, lambda d: None, report=verdicts.extend,
        route_status=lambda kind, obj, verdict: statuses.append(obj["metadata"]["name"]),
    )  # fmt: skip
    kind = "HTTPRoute.gateway.networking.k8s.io"
    for obj in (route("inbound", SERVER), route("both", SERVER, SERVICE), route("nowhere")):
        source.apply(Event("ADDED", kind, obj))
    source.directory()
    assert sorted(statuses) == ["both", "nowhere"]  # "nowhere" is told NoMatchingParent
    reasons = sorted(str(v) for v in verdicts)
    assert len(reasons) == 2 and any("NoMatchingParent" in r for r in reasons), reasons
