"""The local source: the registry file becomes a Directory; authorities resolve against it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lacewing.controller.destination import Directory, LocalSource, directory_from_registry
from lacewing.core.discovery import Endpoint, parse_authority
from lacewing.core.registry import PodEntry, Registry, ServiceEntry, ServicePort, WorkloadRef

WEB_ID = "web.demo.serviceaccount.identity.lacewing.cluster.local"


def pod(
    name: str, ip: str, *, ready: bool = True, meshed: bool = True, app: str = "web"
) -> PodEntry:
    return PodEntry(
        name=name,
        namespace="demo",
        ip=ip,
        labels={"app": app},
        service_account=app,
        ready=ready,
        meshed=meshed,
        workload=WorkloadRef("Deployment", app),
    )


def registry(*pods: PodEntry, revision: int = 1) -> Registry:
    return Registry(
        cluster="t",
        revision=revision,
        services=(
            ServiceEntry(
                "web", "demo", "10.43.0.10", (ServicePort("http", 80, 8080),), {"app": "web"}
            ),
            ServiceEntry(
                "db", "demo", "10.43.0.11", (ServicePort("pg", 5432, 5432, True),), {"app": "db"}
            ),
        ),
        pods=pods,
    )


def resolve(directory: Directory, text: str) -> tuple[bool, list[Endpoint]]:
    exists, endpoints = directory.resolve(parse_authority(text, default_namespace="demo"))
    return exists, endpoints.sorted()


def test_service_names_and_cluster_ip_resolve_to_ready_pods_with_identity() -> None:
    directory = directory_from_registry(
        registry(
            pod("web-0", "10.42.0.10"),
            pod("web-1", "10.42.0.11", ready=False),
            pod("web-2", "10.42.0.12", meshed=False),
        )
    )
    exists, endpoints = resolve(directory, "web:80")
    assert exists
    assert [(e.address, e.port, e.identity) for e in endpoints] == [
        ("10.42.0.10", 8080, WEB_ID),
        ("10.42.0.12", 8080, None),
    ]
    assert endpoints[0].labels == {
        "namespace": "demo",
        "service": "web",
        "pod": "web-0",
        "deployment": "web",
        "serviceaccount": "web",  # dst_serviceaccount, as Linkerd labels it
    }
    assert resolve(directory, "10.43.0.10:80") == (True, endpoints)
    assert resolve(directory, "web.demo.svc.cluster.local:80") == (True, endpoints)


def test_pod_ip_unknown_names_and_opaque_ports() -> None:
    directory = directory_from_registry(
        registry(pod("web-0", "10.42.0.10"), pod("db-0", "10.42.0.20", app="db"))
    )
    exists, [only] = resolve(directory, "10.42.0.10:8080")
    assert exists and only.identity == WEB_ID and only.labels["pod"] == "web-0"
    assert [e.opaque for e in resolve(directory, "db:5432")[1]] == [True]
    assert resolve(directory, "10.42.0.20:5432")[1][0].opaque
    assert resolve(directory, "web:81") == (False, [])
    assert resolve(directory, "nope:80") == (False, [])
    assert resolve(directory, "192.0.2.1:80") == (False, [])


def test_the_source_publishes_each_change_of_the_file_and_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    path = tmp_path / "registry.json"
    published: list[Directory] = []
    source = LocalSource(path, published.append)
    assert source.poll() and published[-1] == Directory()  # no file yet: nothing known
    assert not source.poll()

    def write(doc: object, stamp: int) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.utime(tmp, ns=(stamp, stamp))
        tmp.rename(path)

    write(registry(pod("web-0", "10.42.0.10")).to_dict(), 1_000_000_000)
    assert source.poll()
    assert [e.address for e in resolve(published[-1], "web:80")[1]] == ["10.42.0.10"]
    assert not source.poll()  # unchanged file: nothing new
    write(registry(pod("web-0", "10.42.0.10"), pod("web-1", "10.42.0.11")).to_dict(), 2_000_000_000)
    assert source.poll()
    assert len(resolve(published[-1], "web:80")[1]) == 2
    count = len(published)
    write({"cluster": "t"}, 3_000_000_000)  # malformed: ignored, last good stays published
    assert not source.poll()
    assert len(published) == count


def http_route(name: str, backend: str, port: int = 80) -> dict[str, object]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"parentRefs": [{"kind": "Service", "group": "", "name": "web", "port": 80}],
                     "rules": [{"backendRefs": [{"name": backend, "port": port}]}]}}  # fmt: skip


def test_routes_next_to_the_registry_are_served_and_bad_ones_left_out(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(registry(pod("web-0", "10.42.0.10")).to_dict()))
    published: list[Directory] = []
    source = LocalSource(path, published.append)
    assert source.poll() and published[-1].routes == ()
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps([http_route("ok", "web"), http_route("gone", "nope"),
                                       http_route("badport", "web", 81)]))  # fmt: skip
    assert source.poll()
    served = published[-1].routes_for(parse_authority("10.43.0.10:80"))
    assert [json.loads(text)["metadata"]["name"] for text in served] == ["ok"]
    assert published[-1].routes_for(parse_authority("web.demo:80")) == served
    assert published[-1].routes_for(parse_authority("db.demo:5432")) == ()
    assert not source.poll()
    routes_file.unlink()  # no file: no routes
    assert source.poll() and published[-1].routes == ()


def test_a_services_annotations_are_its_default_route_without_any_routes_file(
    tmp_path: Path,
) -> None:
    notes = {"timeout.lacewing.io/request": "300ms", "retry.lacewing.io/http": "5xx"}
    base = registry(pod("web-0", "10.42.0.10"))
    web = base.services[0]
    annotated = ServiceEntry(web.name, web.namespace, web.cluster_ip, web.ports, web.selector,
                             {**notes, "example.com/x": "ignored"})  # fmt: skip
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(Registry("t", 1, (annotated, base.services[1]),
                                        base.pods).to_dict()))  # fmt: skip
    published: list[Directory] = []
    assert LocalSource(path, published.append).poll()
    [served] = published[-1].routes_for(parse_authority("10.43.0.10:80"))
    route = json.loads(served)
    assert route["metadata"]["name"] == "service-default"
    assert route["metadata"]["annotations"] == notes
    assert published[-1].routes_for(parse_authority("db.demo:5432")) == ()
