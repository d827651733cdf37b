"""The endpoints controllers: Services with a selector get an EndpointSlice and Endpoints.

For each Service that has a selector, the Pods of its namespace whose labels match and that
have a `podIP` become endpoints: ready ones as ready, the others with `ready: false` (in
Endpoints, under `notReadyAddresses`). Ports are the Service's ports with `targetPort`
resolved to a number (a named targetPort is looked up in the Pods' container ports, as
kube-proxy would). The slice is named `<service>-<5 hex of the Service uid>`, labelled
`kubernetes.io/service-name` and owned by the Service, so deleting the Service removes it.
Objects are rewritten only when their content changes, so watchers see real transitions.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tests.support.kubeapi.errors import ApiError
from tests.support.kubeapi.resources import ResourceType
from tests.support.kubeapi.store import Store

MANAGED_BY = "endpointslice-controller.k8s.io"


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _target_port(port: dict[str, Any], pods: list[dict[str, Any]]) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for pod in pods:
        for container in (pod.get("spec") or {}).get("containers") or []:
            for cport in container.get("ports") or []:
                if cport.get("name") == target:
                    return int(cport["containerPort"])
    return None


def _owner(svc: dict[str, Any]) -> dict[str, Any]:
    meta = svc["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _target_ref(pod: dict[str, Any]) -> dict[str, Any]:
    meta = pod["metadata"]
    return {"kind": "Pod", "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]}


def desired(
    svc: dict[str, Any], pods: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The EndpointSlice and Endpoints a Service should have, given its namespace's Pods."""
    meta = svc["metadata"]
    selector = (svc.get("spec") or {}).get("selector") or {}
    chosen = [
        p
        for p in pods
        if (p.get("status") or {}).get("podIP")
        and "deletionTimestamp" not in p["metadata"]
        and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
    ]
    ports = [
        {"name": p.get("name", ""), "port": number, "protocol": p.get("protocol", "TCP")}
        for p in (svc.get("spec") or {}).get("ports") or []
        if (number := _target_port(p, chosen)) is not None
    ]
    suffix = hashlib.sha256(meta["uid"].encode()).hexdigest()[:5]
    slice_obj = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{meta['name']}-{suffix}",
            "namespace": meta["namespace"],
            "labels": {
                "kubernetes.io/service-name": meta["name"],
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
            "ownerReferences": [_owner(svc)],
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [p["status"]["podIP"]],
                "conditions": {"ready": _ready(p), "serving": _ready(p), "terminating": False},
                "nodeName": (p.get("spec") or {}).get("nodeName"),
                "targetRef": _target_ref(p),
            }
            for p in chosen
        ],
        "ports": ports,
    }
    address = [
        {
            "ip": p["status"]["podIP"],
            "nodeName": p["spec"].get("nodeName"),
            "targetRef": _target_ref(p),
        }
        for p in chosen
    ]
    subset: dict[str, Any] = {"ports": ports}
    ready = [a for a, p in zip(address, chosen, strict=True) if _ready(p)]
    not_ready = [a for a, p in zip(address, chosen, strict=True) if not _ready(p)]
    if ready:
        subset["addresses"] = ready
    if not_ready:
        subset["notReadyAddresses"] = not_ready
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": dict(meta.get("labels") or {}),
        },
        "subsets": [subset] if chosen else [],
    }
    return slice_obj, endpoints


def _put(store: Store, rt: ResourceType, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    try:
        current = store.get(rt, meta["namespace"], meta["name"])
    except ApiError:
        store.create(rt, meta["namespace"], obj, manager=MANAGED_BY)
        return
    body = {k: v for k, v in obj.items() if k != "metadata"}
    merged = {**current, **body, "metadata": {**current["metadata"], **meta}}
    store.replace(rt, meta["namespace"], meta["name"], merged, manager=MANAGED_BY)


def sync_endpoints(store: Store) -> None:
    """One pass of the EndpointSlice and Endpoints controllers over every Service."""
    reg = store.registry
    svc_rt, pod_rt = reg.by_kind("v1", "Service"), reg.by_kind("v1", "Pod")
    slice_rt = reg.by_kind("discovery.k8s.io/v1", "EndpointSlice")
    ep_rt = reg.by_kind("v1", "Endpoints")
    assert svc_rt and pod_rt and slice_rt and ep_rt
    pods_by_ns: dict[str, list[dict[str, Any]]] = {}
    for pod in store.list(pod_rt)[0]:
        pods_by_ns.setdefault(pod["metadata"]["namespace"], []).append(pod)
    for svc in store.list(svc_rt)[0]:
        if not (svc.get("spec") or {}).get("selector"):
            continue
        slice_obj, endpoints = desired(svc, pods_by_ns.get(svc["metadata"]["namespace"], []))
        _put(store, slice_rt, slice_obj)
        _put(store, ep_rt, endpoints)
