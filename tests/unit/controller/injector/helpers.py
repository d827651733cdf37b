"""Pods, namespaces and install values shared by the injector's tests."""

from __future__ import annotations

import copy
from typing import Any

from lacewing.install.values import Values, build_values

Obj = dict[str, Any]

ENABLED = {"lacewing.io/inject": "enabled"}


def namespace(name: str, annotations: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def pod(
    ns: str = "shop",
    annotations: dict[str, str] | None = None,
    spec: Obj | None = None,
    name: str = "web-1",
) -> Obj:
    meta: Obj = {"name": name, "namespace": ns, "labels": {"app": "web"}}
    if annotations is not None:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": copy.deepcopy(spec)
        or {
            "serviceAccountName": "web",
            "containers": [
                {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}
            ],
        },
    }


def values(**overrides: Any) -> Values:
    return build_values(overrides=overrides or None)
