"""The `scale` subresource: a workload seen as an autoscaling/v1 `Scale`.

GET renders the workload's replicas and selector as a Scale; PUT or PATCH applies the change
to that Scale document (with the same patch code as everything else) and writes only the new
`spec.replicas` back to the workload, guarded by the resourceVersion the client sent, if any.
"""

from __future__ import annotations

from typing import Any

from tests.support.kubeapi.errors import ApiError
from tests.support.kubeapi.patch import json_merge_patch, json_patch, strategic_merge_patch


def to_scale(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    match = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in match.items()),
        },
    }


def patched_scale(current: dict[str, Any], patch_type: str, body: Any) -> dict[str, Any]:
    """The Scale after a client's patch (merge, json or strategic)."""
    if patch_type == "merge":
        out = json_merge_patch(current, body)
    elif patch_type == "json":
        out = json_patch(current, body)
    elif patch_type == "strategic":
        out = strategic_merge_patch(current, body)
    else:
        raise ApiError(415, "UnsupportedMediaType", f"{patch_type} patches of scale are not served")
    if not isinstance(out, dict):
        raise ApiError(422, "Invalid", "the patch did not produce a Scale")
    return out


def replicas_change(scale: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that carries a Scale's replicas (and version guard) to its workload."""
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise ApiError(
            422,
            "Invalid",
            f'Scale.autoscaling "{scale.get("metadata", {}).get("name", "")}" is invalid: '
            f"spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0",
        )
    change: dict[str, Any] = {"spec": {"replicas": replicas}}
    version = (scale.get("metadata") or {}).get("resourceVersion")
    if version:
        change["metadata"] = {"resourceVersion": version}
    return change
