"""The cluster file parser: good files become a ClusterSpec, bad ones one line naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lacewing.errors import UsageError
from lacewing.local.demo import CANARY_FILE, CLUSTER_FILE
from lacewing.local.spec import load_cluster_file, parse_cluster


def doc(**workload: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "web", "command": ["python", "-m", "x"]}
    base.update(workload)
    return {"workloads": [base]}


def test_defaults_follow_kubernetes() -> None:
    spec = parse_cluster(doc())
    web = spec.workloads[0]
    assert (web.namespace, web.account, web.replicas, web.meshed) == ("default", "web", 1, True)
    assert web.labels == {"app": "web"}
    assert web.ports == ()


def test_full_workload() -> None:
    spec = parse_cluster(
        {
            "apiVersion": "lacewing.io/v1alpha1",
            "kind": "LocalCluster",
            "workloads": [
                {
                    "name": "db",
                    "namespace": "shop",
                    "serviceAccount": "database",
                    "replicas": 3,
                    "meshed": False,
                    "ports": [{"name": "sql", "port": 5432, "protocol": "opaque"}, {"port": 80}],
                    "command": ["server", "--port", 5432],
                    "env": {"MODE": "fast", "N": 3},
                }
            ],
        }
    )
    db = spec.workloads[0]
    assert db.command == ("server", "--port", "5432")
    assert db.env == {"MODE": "fast", "N": "3"}
    assert [(p.name, p.port, p.opaque) for p in db.ports] == [
        ("sql", 5432, True),
        ("port-80", 80, False),
    ]
    assert (db.namespace, db.account, db.replicas, db.meshed) == ("shop", "database", 3, False)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "(top): must be a map"),
        ({"workloads": []}, "workloads: must be a non-empty list"),
        ({"workloads": [{}], "extra": 1}, "extra: unknown field"),
        ({"kind": "Pod", "workloads": [{}]}, "kind: must be LocalCluster"),
        (doc(name="Web"), "workloads[0].name: must be a DNS label"),
        ({"workloads": [{"name": "web"}]}, "workloads[0].command: is required"),
        (doc(command=[]), "workloads[0].command: must be a non-empty list"),
        (doc(replicas=-1), "workloads[0].replicas: must be a number from 0 to 20"),
        (doc(replicas=True), "workloads[0].replicas: must be a number"),
        (doc(meshed="yes"), "workloads[0].meshed: must be true or false"),
        (doc(ports=[{"port": 70000}]), "workloads[0].ports[0].port: must be a number"),
        (doc(ports=[{"port": 80, "protocol": "udp"}]), "workloads[0].ports[0].protocol"),
        (doc(ports=[{"port": 80}, {"port": 80}]), "workloads[0].ports[1]: repeats"),
        (doc(ports=[{"port": 4191}]), "workloads[0].ports[0].port: is used by the proxy"),
        (doc(env={"1BAD": "x"}), "workloads[0].env.1BAD: is not a valid environment"),
        (doc(image="nginx"), "workloads[0].image: unknown field"),
        (
            doc(ports=[{"port": 80}], serviceAnnotations={"retry.lacewing.io/limit": 3}),
            "workloads[0].serviceAnnotations.retry.lacewing.io/limit: must be a string",
        ),
        (
            doc(ports=[{"port": 80}], serviceAnnotations={"retry.lacewing.io/htp": "5xx"}),
            "workloads[0].serviceAnnotations.retry.lacewing.io/htp: unknown; known: ",
        ),
        (
            doc(ports=[{"port": 80}], serviceAnnotations={"timeout.lacewing.io/request": "soon"}),
            "workloads[0].serviceAnnotations[timeout.lacewing.io/request]: 'soon' is not a ",
        ),
        (
            doc(serviceAnnotations={"timeout.lacewing.io/request": "1s"}),
            "workloads[0].serviceAnnotations: a workload without ports has no Service",
        ),
    ],
)
def test_bad_files_name_the_field(data: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_cluster(data)
    assert message in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.hint and "docs/local.md" in caught.value.hint


def test_unmeshed_pod_may_use_proxy_ports() -> None:
    assert parse_cluster(doc(meshed=False, ports=[{"port": 4191}])).workloads[0].ports


def test_duplicate_workload_names() -> None:
    with pytest.raises(UsageError, match=r"workloads\[1\]\.name: 'web' is used twice"):
        parse_cluster({"workloads": [doc()["workloads"][0], doc()["workloads"][0]]})


def test_load_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read cluster file"):
        load_cluster_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("workloads: [\n  - {name: web\n")
    with pytest.raises(UsageError, match=r"not valid YAML \(line"):
        load_cluster_file(bad)


def test_bundled_demo_file_is_valid() -> None:
    spec = load_cluster_file(CLUSTER_FILE)
    assert [w.name for w in spec.workloads] == ["web", "emoji", "voting", "vote-bot"]
    assert spec.workload("emoji").replicas == 2
    assert all(w.meshed for w in spec.workloads)


def test_a_cluster_file_carries_route_documents(tmp_path: Path) -> None:
    from lacewing.local.spec import load_cluster_file, load_routes_file

    doc = """
workloads:
  - {name: web, ports: [{name: http, port: 8080}], command: [sleep, "1"]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: split}
spec:
  parentRefs: [{kind: Service, group: "", name: web, port: 8080}]
  rules: [{backendRefs: [{name: web, port: 8080, weight: 9}]}]
"""
    (tmp_path / "c.yaml").write_text(doc)
    spec = load_cluster_file(tmp_path / "c.yaml")
    assert [r["metadata"]["name"] for r in spec.routes] == ["split"]
    bad = doc.replace("weight: 9", "weight: 0")
    (tmp_path / "bad.yaml").write_text(bad)
    with pytest.raises(UsageError) as caught:
        load_cluster_file(tmp_path / "bad.yaml")
    assert str(caught.value.message).startswith(
        "cluster file: document 2 (HTTPRoute split): spec.rules[0].backendRefs: the weights"
    )
    (tmp_path / "r.yaml").write_text(doc.split("---", 1)[1])
    assert len(load_routes_file(tmp_path / "r.yaml")) == 1


def test_a_cluster_file_and_a_routes_file_carry_grpc_routes(tmp_path: Path) -> None:
    from lacewing.local.spec import load_cluster_file, load_routes_file

    grpc_route = """
apiVersion: policy.lacewing.io/v1beta1
kind: GRPCRoute
metadata: {name: greet}
spec:
  parentRefs: [{kind: Service, group: "", name: web, port: 8080}]
  rules: [{matches: [{method: {service: hello.Greeter}}], backendRefs: [{name: web, port: 8080}]}]
"""
    doc = "workloads:\n  - {name: web, ports: [{name: http, port: 8080}], command: [sleep, '1']}\n"
    (tmp_path / "c.yaml").write_text(doc + "---" + grpc_route)
    assert [r["kind"] for r in load_cluster_file(tmp_path / "c.yaml").routes] == ["GRPCRoute"]
    (tmp_path / "r.yaml").write_text(grpc_route.replace("hello.Greeter", "hello/Greeter"))
    with pytest.raises(UsageError) as caught:
        load_routes_file(tmp_path / "r.yaml")
    assert caught.value.message == (
        "cluster file: document 1 (GRPCRoute greet): spec.rules[0].matches[0].method.service: "
        "'hello/Greeter' is not a gRPC service name"
    )


def test_service_annotations_reach_the_registry_services() -> None:
    from lacewing.core.registry import Registry
    from lacewing.local.plan import plan_cluster

    notes = {"retry.lacewing.io/http": "5xx", "timeout.lacewing.io/request": "300ms",
             "example.com/other": "kept"}  # fmt: skip
    spec = parse_cluster(doc(ports=[{"name": "http", "port": 8080}], serviceAnnotations=notes))
    assert spec.workloads[0].service_annotations == notes
    plan = plan_cluster("t", spec)
    assert plan.services[0].annotations == notes
    back = Registry.from_dict({"cluster": "t", "revision": 1,
                               "services": [plan.services[0].to_dict()], "pods": []})  # fmt: skip
    assert back.services[0].annotations == notes


def test_the_demo_canary_file_is_the_demo_plus_a_canary_taking_10_percent_of_emoji() -> None:
    demo, canary = load_cluster_file(CLUSTER_FILE), load_cluster_file(CANARY_FILE)
    assert canary.workloads[: len(demo.workloads)] == demo.workloads  # the same mesh
    [extra] = canary.workloads[len(demo.workloads) :]
    assert extra.name == "emoji-canary" and extra.ports == canary.workload("emoji").ports
    [route] = canary.routes
    assert route["spec"]["parentRefs"][0]["name"] == "emoji"
    weights = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {"emoji": 90, "emoji-canary": 10}


INBOUND = """
workloads:
  - {name: web, ports: [{name: http, port: 8080}], command: [sleep, "1"]}
---
apiVersion: policy.lacewing.io/v1beta1
kind: Server
metadata: {name: web-http}
spec: {podSelector: {matchLabels: {app: web}}, port: http}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-in}
spec:
  parentRefs: [{group: policy.lacewing.io, kind: Server, name: web-http}]
  rules: [{matches: [{path: {type: PathPrefix, value: /api}}]}%s]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-both}
spec:
  parentRefs: [{group: policy.lacewing.io, kind: Server, name: web-http},
               {kind: Service, name: web, port: 8080}]
  rules: [{matches: [{path: {type: PathPrefix, value: /both}}],
           backendRefs: [{name: web, port: 8080}]}]
"""


def test_a_servers_routes_go_to_policy_and_a_route_with_both_parents_to_both(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(INBOUND % "")
    spec = load_cluster_file(path)
    assert [d["metadata"]["name"] for d in spec.policy] == ["web-http", "web-in", "web-both"]
    assert [d["metadata"]["name"] for d in spec.routes] == ["web-both"]


def test_an_inbound_route_with_a_filter_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(INBOUND % ", filters: [{type: RequestHeaderModifier}]")
    with pytest.raises(UsageError) as caught:
        load_cluster_file(path)
    assert str(caught.value) == (
        "cluster file: document 3: HTTPRoute default/web-in: spec.rules[1].filters: not served"
        " on a route whose parents are Servers (inbound routes take matches only)"
    )


def test_the_demos_policy_file_is_valid_with_its_cluster_file(tmp_path: Path) -> None:
    from lacewing.local.demo import POLICY_FILE

    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER_FILE.read_text() + "\n---\n" + POLICY_FILE.read_text())
    spec = load_cluster_file(path)
    kinds = sorted(d["kind"] for d in spec.policy)
    assert kinds == ["AuthorizationPolicy"] * 2 + ["HTTPRoute"] * 2 + [
        "MeshTLSAuthentication"] * 2 + ["Server"]  # fmt: skip
    assert spec.routes == ()
