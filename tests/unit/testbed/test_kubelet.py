"""The kubelet helper: Deployments become ReplicaSets and Pods, which can be made Ready."""

from __future__ import annotations

import ipaddress
from typing import Any

from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Endpoints, Pod
from lightkube.resources.discovery_v1 import EndpointSlice
from lightkube.types import PatchType
from tests.support.kubeapi import KubeAPI
from tests.unit.testbed.test_lightkube_patch import DEPLOY


def test_deployment_becomes_pods(client: Any, kube_api: KubeAPI) -> None:
    kube_api.create({**DEPLOY, "spec": {**DEPLOY["spec"], "replicas": 2}})
    kube_api.kubelet.sync()
    (rs,) = client.list(ReplicaSet, namespace="default")
    assert rs.metadata.ownerReferences[0].kind == "Deployment"
    pods = list(client.list(Pod, namespace="default", labels={"app": "web"}))
    assert len(pods) == 2
    cidr = ipaddress.ip_network(kube_api.list("v1", "Node")[0]["spec"]["podCIDR"])
    for pod in pods:
        assert pod.metadata.ownerReferences[0].name == rs.metadata.name
        assert pod.metadata.labels["pod-template-hash"] in rs.metadata.name
        assert pod.spec.nodeName == "testbed-node"
        assert ipaddress.ip_address(pod.status.podIP) in cidr
        assert pod.status.phase == "Running"
    assert len({p.status.podIP for p in pods}) == 2
    dep = client.get(Deployment, "web", namespace="default")
    assert dep.status.replicas == 2 and not dep.status.readyReplicas


def test_mark_ready_and_back(client: Any, kube_api: KubeAPI) -> None:
    kube_api.create(DEPLOY)
    kube_api.kubelet.sync()
    changed = kube_api.kubelet.mark_ready(namespace="default")
    assert len(changed) == 1
    (pod,) = client.list(Pod, namespace="default")
    conditions = {c.type: c.status for c in pod.status.conditions}
    assert conditions["Ready"] == "True" and conditions["ContainersReady"] == "True"
    assert {(s.name, s.image, s.ready) for s in pod.status.containerStatuses} == {
        ("web", "nginx:1", True),
        ("side", "busybox", True),
    }
    assert client.get(Deployment, "web", namespace="default").status.readyReplicas == 1
    kube_api.kubelet.mark_ready(ready=False, name_prefix="web-")
    (pod,) = client.list(Pod, namespace="default")
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "False"
    assert kube_api.kubelet.mark_ready(name_prefix="nothing-") == []


def test_rollout_restart_replaces_pods(client: Any, kube_api: KubeAPI) -> None:
    kube_api.create(DEPLOY)
    kube_api.kubelet.sync()
    (old,) = client.list(Pod, namespace="default")
    restart = {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}
        }
    }
    client.patch(Deployment, "web", restart, namespace="default", patch_type=PatchType.STRATEGIC)
    kube_api.kubelet.sync()
    (new,) = client.list(Pod, namespace="default")
    assert new.metadata.name != old.metadata.name
    assert new.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == "now"
    sets = {
        rs.metadata.name: rs.spec.replicas for rs in client.list(ReplicaSet, namespace="default")
    }
    assert sorted(sets.values()) == [0, 1]


def test_services_get_endpoint_slices_that_follow_readiness(client: Any, kube_api: KubeAPI) -> None:
    kube_api.create({**DEPLOY, "spec": {**DEPLOY["spec"], "replicas": 2}})
    kube_api.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        }
    )
    kube_api.kubelet.sync()
    (eps,) = client.list(
        EndpointSlice, namespace="default", labels={"kubernetes.io/service-name": "web"}
    )
    assert eps.metadata.ownerReferences[0].kind == "Service"
    assert [(p.name, p.port) for p in eps.ports] == [("http", 8080)]
    assert [e.conditions.ready for e in eps.endpoints] == [False, False]
    pod_ips = {p.status.podIP for p in client.list(Pod, namespace="default")}
    assert {e.addresses[0] for e in eps.endpoints} == pod_ips
    legacy = client.get(Endpoints, "web", namespace="default")
    assert len(legacy.subsets[0].notReadyAddresses) == 2 and not legacy.subsets[0].addresses

    before = eps.metadata.resourceVersion
    kube_api.kubelet.sync()  # nothing changed: the slice is not rewritten
    assert (
        client.get(EndpointSlice, eps.metadata.name, namespace="default").metadata.resourceVersion
        == before
    )
    kube_api.kubelet.mark_ready(namespace="default")
    ready = client.get(EndpointSlice, eps.metadata.name, namespace="default")
    assert [e.conditions.ready for e in ready.endpoints] == [True, True]
    assert len(client.get(Endpoints, "web", namespace="default").subsets[0].addresses) == 2
