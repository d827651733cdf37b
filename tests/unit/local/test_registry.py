"""The registry file's model round-trips and rejects malformed documents by field."""

from __future__ import annotations

import json

import pytest

from lacewing.core.registry import Registry, RegistryError
from lacewing.local.plan import plan_cluster
from lacewing.local.spec import parse_cluster

SPEC = parse_cluster(
    {
        "workloads": [
            {"name": "web", "namespace": "shop", "serviceAccount": "frontend", "replicas": 2,
             "ports": [{"name": "http", "port": 8080}], "command": ["web"]},
        ]
    }
)  # fmt: skip


def test_documented_shape_and_round_trip() -> None:
    registry = plan_cluster("t1", SPEC).registry(3, {"web-0": True})
    data = json.loads(json.dumps(registry.to_dict()))
    assert data == {
        "cluster": "t1",
        "revision": 3,
        "services": [
            {
                "name": "web",
                "namespace": "shop",
                "clusterIP": "10.43.0.10",
                "ports": [{"name": "http", "port": 8080, "targetPort": 8080, "opaque": False}],
                "selector": {"app": "web"},
            }
        ],
        "pods": [
            {
                "name": f"web-{i}",
                "namespace": "shop",
                "ip": f"10.42.0.{10 + i}",
                "labels": {"app": "web"},
                "serviceAccount": "frontend",
                "ready": i == 0,
                "meshed": True,
                "workload": {"kind": "Deployment", "name": "web"},
            }
            for i in range(2)
        ],
    }
    again = Registry.from_dict(data)
    assert again == registry
    assert [p.name for p in again.endpoints(again.services[0])] == ["web-0"]
    assert len(again.endpoints(again.services[0], ready_only=False)) == 2
    assert again.services[0].fqdn == "web.shop.svc.cluster.local"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.pop("revision"), "registry.revision"),
        (lambda d: d.update(revision=True), "registry.revision"),
        (lambda d: d["services"][0].update(clusterIP=1), "services[0].clusterIP"),
        (lambda d: d["services"][0]["ports"][0].pop("targetPort"), "services[0].ports[0]"),
        (lambda d: d["pods"][1].update(ready="yes"), "pods[1].ready"),
        (lambda d: d["pods"][0]["labels"].update(app=1), "pods[0].labels"),
        (lambda d: d["pods"][0].pop("workload"), "pods[0].workload"),
    ],
)
def test_malformed_documents_name_the_field(mutate: object, where: str) -> None:
    data = plan_cluster("t1", SPEC).registry(1, {}).to_dict()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(RegistryError, match=r"^" + where.replace("[", r"\[").replace("]", r"\]")):
        Registry.from_dict(data)
