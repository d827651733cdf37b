"""What the API server adds to and checks in objects of particular kinds, as tables.

`DEFAULTERS` fill in what a real server would (a Namespace's phase, a Service's cluster IP and
port defaults, a Pod's `Pending` phase, a Deployment's replicas, a CRD's `Established`
condition); `VALIDATORS` return (field, message) pairs that become a 422 `Invalid`. Both run on
create and on update, so an update cannot break what create checked. Names are checked here
too: DNS-1123 subdomains for most kinds, DNS-1123 labels where Kubernetes demands them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

Causes = list[tuple[str, str]]

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_NAMED_KINDS = frozenset({"Namespace", "Service"})


class IPAllocator(Protocol):
    def allocate_cluster_ip(self) -> str: ...


def check_name(kind: str, name: str) -> Causes:
    if not name:
        return [("metadata.name", "Required value: name or generateName is required")]
    if kind in LABEL_NAMED_KINDS:
        if len(name) > 63 or not _LABEL.fullmatch(name):
            return [
                (
                    "metadata.name",
                    f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower '
                    "case alphanumeric characters or '-', and must start and end with an "
                    "alphanumeric character",
                )
            ]
    elif len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
        return [
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower '
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character",
            )
        ]
    return []


def _namespace(obj: dict[str, Any], alloc: IPAllocator) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"][
        "name"
    ]


def _service(obj: dict[str, Any], alloc: IPAllocator) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName" and "clusterIP" not in spec:
        spec["clusterIP"] = alloc.allocate_cluster_ip()
    if spec.get("clusterIP"):
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def _pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for container in spec.get("containers") or []:
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")


def _pod(obj: dict[str, Any], alloc: IPAllocator) -> None:
    _pod_spec(obj.setdefault("spec", {}))
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def _workload(obj: dict[str, Any], alloc: IPAllocator) -> None:
    spec = obj.setdefault("spec", {})
    if obj["kind"] != "DaemonSet":
        spec.setdefault("replicas", 1)
    if obj["kind"] == "Deployment":
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        )
    _pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))


def _crd(obj: dict[str, Any], alloc: IPAllocator) -> None:
    spec = obj.setdefault("spec", {})
    status = obj.setdefault("status", {})
    status["acceptedNames"] = {
        k: v
        for k, v in (spec.get("names") or {}).items()
        if k in ("kind", "plural", "singular", "shortNames", "listKind", "categories")
    }
    status["acceptedNames"].setdefault(
        "singular", str(status["acceptedNames"].get("kind", "")).lower()
    )
    status["acceptedNames"].setdefault("listKind", f"{status['acceptedNames'].get('kind', '')}List")
    status["storedVersions"] = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    status["conditions"] = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "reason": "NoConflicts",
            "message": "no conflicts found",
        },
        {
            "type": "Established",
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
        },
    ]


DEFAULTERS: dict[str, Callable[[dict[str, Any], IPAllocator], None]] = {
    "Namespace": _namespace,
    "Service": _service,
    "Pod": _pod,
    "Deployment": _workload,
    "ReplicaSet": _workload,
    "StatefulSet": _workload,
    "DaemonSet": _workload,
    "CustomResourceDefinition": _crd,
}


def _containers(spec: dict[str, Any], prefix: str) -> Causes:
    containers = spec.get("containers")
    if not containers:
        return [(f"{prefix}.containers", "Required value")]
    causes: Causes = []
    for i, c in enumerate(containers):
        if not c.get("name"):
            causes.append((f"{prefix}.containers[{i}].name", "Required value"))
        if not c.get("image"):
            causes.append((f"{prefix}.containers[{i}].image", "Required value"))
    return causes


def _validate_pod(obj: dict[str, Any]) -> Causes:
    return _containers(obj.get("spec") or {}, "spec")


def _validate_workload(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    causes = _containers(template.get("spec") or {}, "spec.template.spec")
    selector = (spec.get("selector") or {}).get("matchLabels")
    if obj["kind"] == "Job":
        return causes
    if not spec.get("selector"):
        return [*causes, ("spec.selector", "Required value")]
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector and any(labels.get(k) != v for k, v in selector.items()):
        causes.append(
            (
                "spec.template.metadata.labels",
                f"Invalid value: {labels}: `selector` does not match template `labels`",
            )
        )
    return causes


def _validate_service(obj: dict[str, Any]) -> Causes:
    causes: Causes = []
    for i, port in enumerate((obj.get("spec") or {}).get("ports") or []):
        value = port.get("port")
        if not isinstance(value, int) or not 0 < value < 65536:
            causes.append(
                (
                    f"spec.ports[{i}].port",
                    f"Invalid value: {value}: must be between 1 and 65535, inclusive",
                )
            )
    return causes


def _validate_crd(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    causes: Causes = []
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append((f"spec.names.{field}", "Required value"))
    if not spec.get("group"):
        causes.append(("spec.group", "Required value"))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(("spec.versions", "Required value"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            (
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if not causes and obj["metadata"]["name"] != expected:
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{obj["metadata"]["name"]}": '
                'must be spec.names.plural+"."+spec.group',
            )
        )
    return causes


VALIDATORS: dict[str, Callable[[dict[str, Any]], Causes]] = {
    "Pod": _validate_pod,
    "Deployment": _validate_workload,
    "ReplicaSet": _validate_workload,
    "StatefulSet": _validate_workload,
    "DaemonSet": _validate_workload,
    "Job": _validate_workload,
    "Service": _validate_service,
    "CustomResourceDefinition": _validate_crd,
}
