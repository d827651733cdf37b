"""The four patch formats and server-side apply, as lightkube sends them."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Service
from lightkube.types import PatchType
from tests.support.kubeapi import KubeAPI
from tests.unit.testbed.test_lightkube_crud import CRD

DEPLOY: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1",
                        "ports": [{"containerPort": 80}],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    },
                    {"name": "side", "image": "busybox"},
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
            },
        },
    },
}


def test_strategic_merge_merges_lists_by_key(client: Any, kube_api: KubeAPI) -> None:
    kube_api.create(DEPLOY)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:2",
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                        },
                        {"name": "lacewing-proxy", "image": "lacewing/proxy:0.1"},
                    ],
                    "volumes": [{"name": "certs", "emptyDir": {}}],
                }
            }
        }
    }
    dep = client.patch(
        Deployment, "web", patch, namespace="default", patch_type=PatchType.STRATEGIC
    )
    containers = {c.name: c for c in dep.spec.template.spec.containers}
    assert list(containers) == ["web", "side", "lacewing-proxy"]
    web = containers["web"]
    assert web.image == "nginx:2"
    assert [p.containerPort for p in web.ports] == [80, 8080]
    assert [(e.name, e.value) for e in web.env] == [("A", "1"), ("B", "20"), ("C", "3")]
    assert [v.name for v in dep.spec.template.spec.volumes] == ["data", "certs"]
    assert dep.metadata.generation == 2


def test_strategic_delete_directive_and_null(client: Any, kube_api: KubeAPI) -> None:
    kube_api.create(DEPLOY)
    patch = {
        "metadata": {"labels": {"x": None}},
        "spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}},
    }
    dep = client.patch(
        Deployment, "web", patch, namespace="default", patch_type=PatchType.STRATEGIC
    )
    assert [c.name for c in dep.spec.template.spec.containers] == ["web"]


def test_merge_patch_replaces_lists(client: Any, kube_api: KubeAPI) -> None:
    kube_api.create(DEPLOY)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x"}]}}}}
    dep = client.patch(Deployment, "web", patch, namespace="default", patch_type=PatchType.MERGE)
    assert [c.name for c in dep.spec.template.spec.containers] == ["only"]


def test_json_patch_ops_and_failed_test(client: Any, kube_api: KubeAPI) -> None:
    kube_api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default"},
            "data": {"a": "1"},
        }
    )
    ops = [
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "replace", "path": "/data/a", "value": "10"},
        {"op": "add", "path": "/metadata/labels", "value": {"k": "v"}},
    ]
    cm = client.patch(ConfigMap, "c", ops, namespace="default", patch_type=PatchType.JSON)
    assert cm.data == {"a": "10", "b": "2"} and cm.metadata.labels == {"k": "v"}
    with pytest.raises(ApiError) as failed:
        client.patch(
            ConfigMap,
            "c",
            [{"op": "test", "path": "/data/a", "value": "nope"}],
            namespace="default",
            patch_type=PatchType.JSON,
        )
    assert failed.value.status.code == 422
    with pytest.raises(ApiError) as missing:
        client.patch(
            ConfigMap,
            "c",
            [{"op": "remove", "path": "/data/zzz"}],
            namespace="default",
            patch_type=PatchType.JSON,
        )
    assert missing.value.status.code == 422
    assert client.get(ConfigMap, "c", namespace="default").data == {"a": "10", "b": "2"}


def test_strategic_patch_refused_for_custom_resources(client: Any, kube_api: KubeAPI) -> None:
    kube_api.create(CRD)
    Server = create_namespaced_resource("policy.lacewing.io", "v1beta1", "Server", "servers")
    client.create(
        Server.from_dict({"metadata": {"name": "s", "namespace": "default"}, "spec": {"port": 1}})
    )
    with pytest.raises(ApiError) as refused:
        client.patch(
            Server, "s", {"spec": {"port": 2}}, namespace="default", patch_type=PatchType.STRATEGIC
        )
    assert refused.value.status.code == 415
    merged = client.patch(
        Server, "s", {"spec": {"port": 2}}, namespace="default", patch_type=PatchType.MERGE
    )
    assert merged.spec == {"port": 2}


def test_server_side_apply_creates_merges_and_prunes(client: Any) -> None:
    svc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "labels": {"a": "1", "b": "2"}},
        "spec": {"ports": [{"port": 80, "name": "http"}], "selector": {"app": "web"}},
    }
    created = client.apply(Service.from_dict(svc), field_manager="lacewing")
    assert created.metadata.labels == {"a": "1", "b": "2"}
    managers = {(m.manager, m.operation) for m in created.metadata.managedFields}
    assert ("lacewing", "Apply") in managers
    svc["metadata"]["labels"] = {"a": "1"}  # b no longer applied: removed
    svc["spec"]["ports"].append({"port": 443, "name": "https"})
    applied = client.apply(Service.from_dict(svc), field_manager="lacewing")
    assert applied.metadata.labels == {"a": "1"}
    assert [p.port for p in applied.spec.ports] == [80, 443]
    assert applied.spec.clusterIP == created.spec.clusterIP  # server-set fields survive


def test_server_side_apply_conflicts_unless_forced(client: Any) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
        "data": {"mode": "a"},
    }
    client.apply(ConfigMap.from_dict(cm), field_manager="first")
    cm["data"] = {"mode": "b"}
    with pytest.raises(ApiError) as conflict:
        client.apply(ConfigMap.from_dict(cm), field_manager="second")
    assert conflict.value.status.code == 409
    assert 'conflict with "first"' in str(conflict.value.status.message)
    assert ".data.mode" in str(conflict.value.status.message)
    forced = client.apply(ConfigMap.from_dict(cm), field_manager="second", force=True)
    assert forced.data == {"mode": "b"}
    owners = {m.manager for m in forced.metadata.managedFields}
    assert owners == {"second"}


def test_apply_dry_run_creates_nothing(client: Any) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "d", "namespace": "default"},
        "data": {"x": "y"},
    }
    out = client.apply(ConfigMap.from_dict(cm), field_manager="m", dry_run=True)
    assert out.data == {"x": "y"}
    with pytest.raises(ApiError):
        client.get(ConfigMap, "d", namespace="default")
