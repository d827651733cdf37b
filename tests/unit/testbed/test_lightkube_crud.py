"""Create/get/list/update/delete through lightkube's sync client, with real-server errors."""

from __future__ import annotations

import time
from typing import Any

import pytest
from lightkube import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.apps_v1 import DeploymentSpec, DeploymentStatus
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Node, Pod, Service
from lightkube.types import PatchType
from tests.support.kubeapi import KubeAPI


def _deployment(name: str = "web", image: str = "nginx:1.25", ns: str = "default") -> Deployment:
    labels = {"app": name}
    return Deployment(
        metadata=ObjectMeta(name=name, namespace=ns),
        spec=DeploymentSpec(
            replicas=1,
            selector=LabelSelector(matchLabels=labels),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=labels),
                spec=PodSpec(containers=[Container(name=name, image=image)]),
            ),
        ),
    )


def test_fresh_cluster_is_seeded(client: Any) -> None:
    names = {ns.metadata.name for ns in client.list(Namespace)}
    assert {"default", "kube-system", "kube-public"} <= names
    cm = client.get(ConfigMap, "extension-apiserver-authentication", namespace="kube-system")
    assert "BEGIN CERTIFICATE" in cm.data["client-ca-file"]
    nodes = list(client.list(Node))
    assert len(nodes) == 1 and nodes[0].spec.podCIDR


def test_create_get_stamps_metadata_and_global_versions(client: Any) -> None:
    first = client.create(
        ConfigMap(metadata=ObjectMeta(name="a"), data={"k": "v"}), namespace="default"
    )
    second = client.create(ConfigMap(metadata=ObjectMeta(name="b")), namespace="default")
    assert first.metadata.uid and first.metadata.uid != second.metadata.uid
    assert first.metadata.creationTimestamp is not None
    assert int(second.metadata.resourceVersion) > int(first.metadata.resourceVersion)
    got = client.get(ConfigMap, "a", namespace="default")
    assert got.data == {"k": "v"} and got.metadata.resourceVersion == first.metadata.resourceVersion


def test_errors_are_status_objects(client: Any) -> None:
    with pytest.raises(ApiError) as missing:
        client.get(ConfigMap, "nope", namespace="default")
    assert missing.value.status.code == 404 and missing.value.status.reason == "NotFound"
    assert missing.value.status.message == 'configmaps "nope" not found'

    client.create(ConfigMap(metadata=ObjectMeta(name="dup")), namespace="default")
    with pytest.raises(ApiError) as dup:
        client.create(ConfigMap(metadata=ObjectMeta(name="dup")), namespace="default")
    assert (dup.value.status.code, dup.value.status.reason) == (409, "AlreadyExists")

    with pytest.raises(ApiError) as bad:
        client.create(ConfigMap(metadata=ObjectMeta(name="Bad_Name")), namespace="default")
    assert (bad.value.status.code, bad.value.status.reason) == (422, "Invalid")
    assert "metadata.name" in str(bad.value.status.message)

    with pytest.raises(ApiError) as no_ns:
        client.create(ConfigMap(metadata=ObjectMeta(name="x")), namespace="ghost")
    assert no_ns.value.status.code == 404 and 'namespaces "ghost"' in str(
        no_ns.value.status.message
    )


def test_stale_resource_version_conflicts(client: Any) -> None:
    cm = client.create(
        ConfigMap(metadata=ObjectMeta(name="c"), data={"n": "1"}), namespace="default"
    )
    cm.data = {"n": "2"}
    updated = client.replace(cm)
    assert int(updated.metadata.resourceVersion) > int(cm.metadata.resourceVersion)
    cm.data = {"n": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiError) as conflict:
        client.replace(cm)
    assert (conflict.value.status.code, conflict.value.status.reason) == (409, "Conflict")
    assert client.get(ConfigMap, "c", namespace="default").data == {"n": "2"}


def test_generation_grows_on_spec_change_only(client: Any, kube_api: KubeAPI) -> None:
    dep = client.create(_deployment())
    assert dep.metadata.generation == 1
    dep.metadata.labels = {"team": "a"}
    dep = client.replace(dep)
    assert dep.metadata.generation == 1
    dep.spec.replicas = 3
    dep = client.replace(dep)
    assert dep.metadata.generation == 2


def test_status_subresource_is_separate(client: Any) -> None:
    dep = client.create(_deployment())
    dep.status = DeploymentStatus(replicas=7)
    dep = client.replace(dep)  # the main resource ignores status
    assert dep.status is None or not dep.status.replicas
    patched = client.patch(
        Deployment.Status,
        "web",
        {"status": {"readyReplicas": 2}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )
    assert patched.status.readyReplicas == 2
    # the status subresource ignores everything but status
    after = client.patch(
        Deployment.Status,
        "web",
        {"spec": {"replicas": 5}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )
    assert after.spec.replicas == 1 and after.metadata.generation == 1


def test_unchanged_update_keeps_version(client: Any) -> None:
    cm = client.create(
        ConfigMap(metadata=ObjectMeta(name="same"), data={"a": "b"}), namespace="default"
    )
    again = client.replace(cm)
    assert again.metadata.resourceVersion == cm.metadata.resourceVersion


def test_delete_and_cascades(client: Any, kube_api: KubeAPI) -> None:
    client.create(Namespace(metadata=ObjectMeta(name="shop")))
    client.create(_deployment(ns="shop"))
    kube_api.kubelet.sync()
    assert len(list(client.list(Pod, namespace="shop"))) == 1
    client.delete(Deployment, "web", namespace="shop")  # dependents are collected
    assert list(client.list(Pod, namespace="shop")) == []
    client.create(ConfigMap(metadata=ObjectMeta(name="x")), namespace="shop")
    kube_api.delete("v1", "Namespace", "shop")  # in-process: immediate, with contents
    assert kube_api.get("v1", "ConfigMap", "x", "shop") is None
    with pytest.raises(ApiError) as gone:
        client.delete(Namespace, "shop")
    assert gone.value.status.code == 404


def test_dry_run_stores_nothing(client: Any) -> None:
    made = client.create(
        ConfigMap(metadata=ObjectMeta(name="dry")), namespace="default", dry_run=True
    )
    assert made.metadata.name == "dry" and made.metadata.uid
    with pytest.raises(ApiError):
        client.get(ConfigMap, "dry", namespace="default")
    client.create(ConfigMap(metadata=ObjectMeta(name="real"), data={"a": "1"}), namespace="default")
    client.delete(ConfigMap, "real", namespace="default", dry_run=True)
    client.patch(ConfigMap, "real", {"data": {"a": "2"}}, namespace="default", dry_run=True)
    assert client.get(ConfigMap, "real", namespace="default").data == {"a": "1"}


def test_service_gets_cluster_ip_and_port_defaults(client: Any) -> None:
    svc = client.create(
        Service.from_dict(
            {
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
            }
        ),
        namespace="default",
    )
    assert svc.spec.clusterIP.startswith("10.96.")
    assert svc.spec.ports[0].targetPort == 80 and svc.spec.ports[0].protocol == "TCP"


CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servers.policy.lacewing.io"},
    "spec": {
        "group": "policy.lacewing.io",
        "scope": "Namespaced",
        "names": {
            "plural": "servers",
            "singular": "server",
            "kind": "Server",
            "shortNames": ["srv"],
        },
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def test_crd_kinds_become_servable(client: Any, kube_api: KubeAPI) -> None:
    Server = create_namespaced_resource("policy.lacewing.io", "v1beta1", "Server", "servers")
    with pytest.raises(ApiError) as before:
        list(client.list(Server, namespace="default"))
    assert before.value.status.code == 404
    created = kube_api.create(CRD)
    assert any(
        c["type"] == "Established" and c["status"] == "True"
        for c in created["status"]["conditions"]
    )
    srv = client.create(
        Server(metadata=ObjectMeta(name="web"), spec={"port": 8080}), namespace="default"
    )
    assert srv.spec == {"port": 8080}
    client.delete(CustomResourceDefinition, "servers.policy.lacewing.io")
    assert kube_api.cluster.registry.by_kind("policy.lacewing.io/v1beta1", "Server") is None


def test_namespace_deleted_over_http_terminates_first(client: Any, kube_api: KubeAPI) -> None:
    client.create(Namespace(metadata=ObjectMeta(name="gone")))
    client.create(ConfigMap(metadata=ObjectMeta(name="x")), namespace="gone")
    client.delete(Namespace, "gone")
    ns = client.get(Namespace, "gone")
    assert ns.status.phase == "Terminating" and ns.metadata.deletionTimestamp is not None
    with pytest.raises(ApiError) as refused:
        client.create(ConfigMap(metadata=ObjectMeta(name="y")), namespace="gone")
    assert refused.value.status.code == 403
    kube_api.cluster.store.finalize_due(now=time.monotonic() + 1)
    assert kube_api.get("v1", "Namespace", "gone") is None
    assert kube_api.get("v1", "ConfigMap", "x", "gone") is None


def test_rejected_or_dry_run_patches_leave_the_stored_object_alone(
    client: Any, kube_api: KubeAPI
) -> None:
    client.create(_deployment())
    before = kube_api.get("apps/v1", "Deployment", "web", "default")
    empty: dict[str, Any] = {"spec": {"template": {"spec": {"containers": []}}}}
    with pytest.raises(ApiError) as invalid:  # no containers: 422 after patching
        client.patch(Deployment, "web", empty, namespace="default", patch_type=PatchType.MERGE)
    assert invalid.value.status.code == 422
    paused = {"spec": {"paused": True}}
    client.patch(
        Deployment,
        "web",
        paused,
        namespace="default",
        patch_type=PatchType.MERGE,
        field_manager="dry",
        dry_run=True,
    )
    assert kube_api.get("apps/v1", "Deployment", "web", "default") == before
    client.patch(Deployment, "web", paused, namespace="default", patch_type=PatchType.MERGE)
    after = kube_api.get("apps/v1", "Deployment", "web", "default")
    assert after is not None and before is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
