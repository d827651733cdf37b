"""The controllers (and the fake kubelet): Deployments become ReplicaSets and Pods.

`sync()` does one pass of what kube-controller-manager and the scheduler would do:
- for each Deployment, the ReplicaSet of its current pod template exists (named
  `<deployment>-<template hash>`, labelled `pod-template-hash`, owned by the Deployment) with
  the Deployment's replicas; ReplicaSets of older templates are scaled to zero, which is a
  rollout (`kubectl rollout restart` changes the template, so it yields new Pods);
- for each ReplicaSet, Pods are created or deleted until their number is the replicas. A Pod
  gets the template's labels and spec, an ownerReference to its ReplicaSet, `spec.nodeName`,
  and phase Running with a `podIP` taken from the node's `spec.podCIDR`, not yet Ready;
- Deployment and ReplicaSet statuses are recomputed from their Pods;
- every Service with a selector gets its EndpointSlice and Endpoints (`endpoints.py`).
`mark_ready()` flips Pods to Ready (conditions Ready and ContainersReady, and a ready
containerStatus with the image per container) or back, then recomputes statuses.
Everything goes through the store, so watchers see the same events as on a real cluster.
With a `NodeRuntime` (`node.py`) running, `mark_ready` is not used: the runtime runs the
Pods and writes their real status.
New Pods pass through mutating admission webhooks; when a webhook is served by an async
test's own event loop, call `sync()` through `loop.run_in_executor`, or the blocked loop
cannot answer the webhook.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
from collections.abc import Callable
from typing import Any

from tests.support.kubeapi.endpoints import sync_endpoints
from tests.support.kubeapi.errors import ApiError
from tests.support.kubeapi.store import Store

# Runs a new Pod through mutating admission (webhooks), as the ReplicaSet controller's
# create request would on a real cluster.
Admit = Callable[[dict[str, Any]], dict[str, Any]]

NODE_NAME = "testbed-node"
NODE_POD_CIDR = "10.244.0.0/24"
NODE_IP = "192.168.49.2"


def node_object(kubelet_version: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "arm64",
                "node-role.kubernetes.io/control-plane": "",
            },
        },
        "spec": {"podCIDR": NODE_POD_CIDR, "podCIDRs": [NODE_POD_CIDR]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [
                {"type": "InternalIP", "address": NODE_IP},
                {"type": "Hostname", "address": NODE_NAME},
            ],
            "nodeInfo": {
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": kubelet_version,
                "containerRuntimeVersion": "containerd://1.7.0",
                "operatingSystem": "linux",
                "architecture": "arm64",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0",
                "bootID": "00000000-0000-0000-0000-000000000001",
                "machineID": "00000000000000000000000000000001",
                "systemUUID": "00000000-0000-0000-0000-000000000001",
            },
        },
    }


def template_hash(template: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def _owner_ref(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r.get("uid") == owner["metadata"]["uid"] for r in refs)


class Kubelet:
    """Controllers and kubelet for one cluster (see the module docstring)."""

    def __init__(self, store: Store, admit: Admit | None = None) -> None:
        self._store = store
        self._admit = admit
        reg = store.registry
        self._deploy = reg.by_kind("apps/v1", "Deployment")
        self._rs = reg.by_kind("apps/v1", "ReplicaSet")
        self._pod = reg.by_kind("v1", "Pod")
        self._node = reg.by_kind("v1", "Node")
        self._counter = 0
        # addresses still held by pods the node is terminating (NodeRuntime sets this)
        self.reserved_ips: Callable[[], set[str]] = set

    def sync(self) -> None:
        """One reconciliation pass over every Deployment, ReplicaSet and their Pods."""
        assert self._deploy and self._rs
        deployments, _ = self._store.list(self._deploy)
        for deploy in deployments:
            self._sync_deployment(deploy)
        replicasets, _ = self._store.list(self._rs)
        for rs in replicasets:
            self._sync_replicaset(rs)
        self._update_statuses()
        sync_endpoints(self._store)

    def mark_ready(
        self, namespace: str | None = None, ready: bool = True, name_prefix: str | None = None
    ) -> list[str]:
        """Make matching Pods Ready (or not); returns the names of the Pods changed."""
        assert self._pod
        pods, _ = self._store.list(self._pod, namespace)
        changed = []
        for pod in pods:
            name = pod["metadata"]["name"]
            if name_prefix and not name.startswith(name_prefix):
                continue
            pod["status"] = self._pod_status(pod, ready)
            self._store.replace(
                self._pod,
                pod["metadata"]["namespace"],
                name,
                pod,
                subresource="status",
                manager="kubelet",
            )
            changed.append(name)
        self._update_statuses()
        sync_endpoints(self._store)
        return changed

    # ------------------------------------------------------------------ internals

    def _sync_deployment(self, deploy: dict[str, Any]) -> None:
        assert self._rs
        meta, spec = deploy["metadata"], deploy["spec"]
        ns = meta["namespace"]
        template = copy.deepcopy(spec.get("template") or {})
        tpl_hash = template_hash(template)
        rs_name = f"{meta['name']}-{tpl_hash}"
        owned = [rs for rs in self._store.list(self._rs, ns)[0] if _owned_by(rs, deploy)]
        for rs in owned:
            if rs["metadata"]["name"] != rs_name and rs["spec"].get("replicas", 0) != 0:
                rs["spec"]["replicas"] = 0
                self._store.replace(
                    self._rs, ns, rs["metadata"]["name"], rs, manager="deployment-controller"
                )
        labels = {
            **(template.get("metadata") or {}).get("labels", {}),
            "pod-template-hash": tpl_hash,
        }
        template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = tpl_hash
        wanted: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [_owner_ref(deploy)],
            },
            "spec": {
                "replicas": spec.get("replicas", 1),
                "selector": selector,
                "template": template,
            },
        }
        current = next((rs for rs in owned if rs["metadata"]["name"] == rs_name), None)
        if current is None:
            self._store.create(self._rs, ns, wanted, manager="deployment-controller")
        elif current["spec"].get("replicas") != wanted["spec"]["replicas"]:
            current["spec"]["replicas"] = wanted["spec"]["replicas"]
            self._store.replace(self._rs, ns, rs_name, current, manager="deployment-controller")

    def _sync_replicaset(self, rs: dict[str, Any]) -> None:
        assert self._pod
        ns = rs["metadata"]["namespace"]
        pods = [p for p in self._store.list(self._pod, ns)[0] if _owned_by(p, rs)]
        wanted = rs["spec"].get("replicas", 1)
        for pod in pods[wanted:]:
            self._store.delete(self._pod, ns, pod["metadata"]["name"])
        for _ in range(wanted - len(pods)):
            self._create_pod(rs)

    def _create_pod(self, rs: dict[str, Any]) -> None:
        assert self._pod
        template = copy.deepcopy(rs["spec"].get("template") or {})
        ns = rs["metadata"]["namespace"]
        self._counter += 1
        suffix = hashlib.sha256(f"{rs['metadata']['uid']}/{self._counter}".encode()).hexdigest()[:5]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                **(template.get("metadata") or {}),
                "name": f"{rs['metadata']['name']}-{suffix}",
                "namespace": ns,
                "ownerReferences": [_owner_ref(rs)],
            },
            "spec": {**(template.get("spec") or {}), "nodeName": NODE_NAME},
        }
        if self._admit is not None:
            pod = self._admit(pod)
        created = self._store.create(self._pod, ns, pod, manager="kube-controller-manager")
        created["status"] = {
            "phase": "Running",
            "hostIP": NODE_IP,
            "podIP": self._next_pod_ip(),
            "startTime": created["metadata"]["creationTimestamp"],
            "conditions": [],
        }
        created["status"]["podIPs"] = [{"ip": created["status"]["podIP"]}]
        created["status"] = self._pod_status(created, ready=False)
        self._store.replace(
            self._pod,
            ns,
            created["metadata"]["name"],
            created,
            subresource="status",
            manager="kubelet",
        )

    def _next_pod_ip(self) -> str:
        assert self._pod and self._node
        try:
            node = self._store.get(self._node, None, NODE_NAME)
            cidr = node["spec"].get("podCIDR", NODE_POD_CIDR)
        except ApiError:
            cidr = NODE_POD_CIDR
        used = {p.get("status", {}).get("podIP") for p in self._store.list(self._pod)[0]}
        used |= self.reserved_ips()
        for host in ipaddress.ip_network(cidr).hosts():
            if str(host) not in used and int(host) & 0xFF != 1:  # .1 is the node's bridge
                return str(host)
        raise ApiError(422, "Invalid", f"the node's pod CIDR {cidr} is exhausted")

    def _pod_status(self, pod: dict[str, Any], ready: bool) -> dict[str, Any]:
        status = copy.deepcopy(pod.get("status") or {})
        now = pod["metadata"]["creationTimestamp"]
        flag = "True" if ready else "False"
        status["conditions"] = [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": flag, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        ]
        status["containerStatuses"] = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": f"{c.get('image', '')}@sha256:{'0' * 64}",
                "ready": ready,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
            for c in (pod.get("spec") or {}).get("containers") or []
        ]
        return status

    def _update_statuses(self) -> None:
        assert self._deploy and self._rs and self._pod
        pods = self._store.list(self._pod)[0]
        replicasets = self._store.list(self._rs)[0]
        for rs in replicasets:
            mine = [p for p in pods if _owned_by(p, rs)]
            ready = sum(1 for p in mine if _is_ready(p))
            status = {
                "replicas": len(mine),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "fullyLabeledReplicas": len(mine),
                "observedGeneration": rs["metadata"].get("generation", 1),
            }
            self._set_status(self._rs, rs, status)
        for deploy in self._store.list(self._deploy)[0]:
            owned = [rs for rs in replicasets if _owned_by(rs, deploy)]
            mine = [p for p in pods if any(_owned_by(p, rs) for rs in owned)]
            tpl_hash = template_hash(deploy["spec"].get("template") or {})
            ready = sum(1 for p in mine if _is_ready(p))
            replicas = deploy["spec"].get("replicas", 1)
            status = {
                "observedGeneration": deploy["metadata"].get("generation", 1),
                "replicas": len(mine),
                "updatedReplicas": sum(
                    1
                    for p in mine
                    if p["metadata"].get("labels", {}).get("pod-template-hash") == tpl_hash
                ),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": max(replicas - ready, 0),
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True" if ready >= replicas else "False",
                        "reason": "MinimumReplicasAvailable"
                        if ready >= replicas
                        else "MinimumReplicasUnavailable",
                    }
                ],
            }
            self._set_status(self._deploy, deploy, status)

    def _set_status(self, rt: Any, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if obj.get("status") == status:
            return
        obj["status"] = status
        meta = obj["metadata"]
        self._store.replace(
            rt,
            meta["namespace"],
            meta["name"],
            obj,
            subresource="status",
            manager="kube-controller-manager",
        )


def _is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
