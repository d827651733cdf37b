"""The Kubernetes adapter against an in-process fake API (httpx MockTransport).

The fake answers like an API server (Status bodies, discovery documents, paging), so these
tests pin the URLs, parameters and error translation that any real server relies on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import pytest
from lightkube.config.kubeconfig import KubeConfig

from lacewing.errors import ClusterError, ClusterUnreachable
from lacewing.k8s.cluster import Cluster, ClusterApiError, read_control_plane_version

SERVER = "https://kube.test:6443"


def _status(code: int, reason: str, message: str) -> httpx.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return httpx.Response(code, json=body)


class FakeApi:
    """Records requests; answers the few paths the tests use."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.config_maps: dict[tuple[str, str], dict[str, Any]] = {}
        self.crd_served = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, method = request.url.path, request.method
        if path == "/version":
            return httpx.Response(
                200,
                json={"major": "1", "minor": "28+", "gitVersion": "v1.28.3+k3s1"},
                headers={"Date": "Tue, 24 Nov 2026 19:00:00 GMT"},
            )
        if path == "/apis/policy.lacewing.io/v1beta1":
            resources = [
                {"name": "servers", "namespaced": True, "kind": "Server"},
                {"name": "servers/status", "namespaced": True, "kind": "Server"},
            ]
            return httpx.Response(200, json={"resources": resources if self.crd_served else []})
        if path.startswith("/api/v1/namespaces/") and "/configmaps" in path:
            ns = path.split("/")[4]
            if method == "GET" and path.endswith("/configmaps"):
                items = [cm for (n, _), cm in sorted(self.config_maps.items()) if n == ns]
                cont = request.url.params.get("continue")
                page, rest = (items[1:], None) if cont else (items[:1], "t1")
                meta = {"continue": rest} if rest and len(items) > 1 else {}
                return httpx.Response(200, json={"items": page, "metadata": meta})
            name = path.rsplit("/", 1)[1]
            if method == "GET":
                found = self.config_maps.get((ns, name))
                if found is None:
                    return _status(404, "NotFound", f'configmaps "{name}" not found')
                return httpx.Response(200, json=found)
            if method == "PATCH":
                obj = json.loads(request.content)
                if request.url.params.get("dryRun") != "All":
                    self.config_maps[(ns, name)] = obj
                return httpx.Response(200, json=obj)
            if method == "DELETE":
                if self.config_maps.pop((ns, name), None) is None:
                    return _status(404, "NotFound", f'configmaps "{name}" not found')
                return httpx.Response(200, json={"kind": "Status", "status": "Success"})
        if path == "/api/v1/namespaces" and method == "POST":
            return _status(409, "AlreadyExists", 'namespaces "lacewing" already exists')
        if path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
            attrs = json.loads(request.content)["spec"]["resourceAttributes"]
            allowed = attrs["resource"] != "secrets"
            return httpx.Response(201, json={"status": {"allowed": allowed}})
        return _status(404, "NotFound", "the server could not find the requested resource")


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def cluster(api: FakeApi) -> Cluster:
    config = KubeConfig.from_server(SERVER, namespace="default").get()
    assert config is not None
    http = httpx.Client(base_url=SERVER, transport=httpx.MockTransport(api))
    return Cluster(config, http)


def test_server_version_ignores_vendor_suffix(cluster: Cluster) -> None:
    assert cluster.server_version() == (1, 28)


def test_server_now_comes_from_the_date_header(cluster: Cluster) -> None:
    assert cluster.server_now() == datetime(2026, 11, 24, 19, 0, tzinfo=UTC)


def test_get_missing_object_is_none_and_version_reads_the_config_map(
    cluster: Cluster, api: FakeApi
) -> None:
    assert read_control_plane_version(cluster, "lacewing") is None
    api.config_maps[("lacewing", "lacewing-config")] = {"data": {"version": "0.1.0"}}
    assert read_control_plane_version(cluster, "lacewing") == "0.1.0"
    assert api.requests[-1].url.path == "/api/v1/namespaces/lacewing/configmaps/lacewing-config"


def test_apply_is_server_side_apply_with_field_manager(cluster: Cluster, api: FakeApi) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ns"}}
    cluster.apply(cm, dry_run=True)
    request = api.requests[-1]
    assert request.method == "PATCH"
    assert request.headers["Content-Type"] == "application/apply-patch+yaml"
    expected = {"fieldManager": "lacewing", "force": "true", "dryRun": "All"}
    assert dict(request.url.params) == expected
    assert ("ns", "x") not in api.config_maps  # dry run stores nothing
    cluster.apply(cm)
    assert cluster.get("v1", "ConfigMap", "x", "ns") == cm


def test_object_without_namespace_goes_to_the_context_namespace(
    cluster: Cluster, api: FakeApi
) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}})
    assert api.requests[-1].url.path == "/api/v1/namespaces/default/configmaps/y"


def test_list_follows_continue_and_fills_kind(cluster: Cluster, api: FakeApi) -> None:
    for name in ("a", "b"):
        api.config_maps[("ns", name)] = {"metadata": {"name": name}}
    items = cluster.list("v1", "ConfigMap", "ns", label_selector="app=x")
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert {i["kind"] for i in items} == {"ConfigMap"}
    assert api.requests[0].url.params["labelSelector"] == "app=x"


def test_api_error_carries_the_server_message(cluster: Cluster) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lacewing"}}
    with pytest.raises(ClusterApiError) as caught:
        cluster.create(ns)
    assert caught.value.code == 409
    assert str(caught.value) == 'namespaces "lacewing" already exists'
    assert isinstance(caught.value, ClusterError)


def test_delete_of_absent_object_is_not_an_error(cluster: Cluster, api: FakeApi) -> None:
    api.config_maps[("ns", "gone")] = {}
    cluster.delete("v1", "ConfigMap", "gone", "ns")
    cluster.delete("v1", "ConfigMap", "gone", "ns")
    assert ("ns", "gone") not in api.config_maps


def test_custom_kinds_are_found_by_discovery(cluster: Cluster, api: FakeApi) -> None:
    assert cluster.get("policy.lacewing.io/v1beta1", "Server", "web", "shop") is None
    paths = [r.url.path for r in api.requests]
    assert paths == [
        "/apis/policy.lacewing.io/v1beta1",
        "/apis/policy.lacewing.io/v1beta1/namespaces/shop/servers/web",
    ]


def test_unknown_kind_says_to_install_crds(cluster: Cluster, api: FakeApi) -> None:
    api.crd_served = False
    with pytest.raises(ClusterApiError) as caught:
        cluster.list("policy.lacewing.io/v1beta1", "Server")
    assert "does not serve kind" in str(caught.value)
    assert caught.value.hint and "install --crds" in caught.value.hint


def test_can_i_asks_a_self_subject_access_review(cluster: Cluster) -> None:
    assert cluster.can_i("create", "deployments", "apps", "lacewing")
    assert not cluster.can_i("get", "secrets", namespace="lacewing")


def test_unreachable_server_is_cluster_unreachable() -> None:
    config = KubeConfig.from_server("https://127.0.0.1:1").get()
    assert config is not None

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    cluster = Cluster(config, httpx.Client(transport=httpx.MockTransport(refuse)))
    with pytest.raises(ClusterUnreachable) as caught:
        cluster.server_version()
    assert "cannot reach the Kubernetes API" in str(caught.value)
    assert caught.value.hint
