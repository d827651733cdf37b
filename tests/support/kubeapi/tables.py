"""Server-side printing: the `Table` kubectl asks for when it runs `kubectl get`.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`; the server answers
with column definitions and one row of cells per object, plus the object's metadata
(`PartialObjectMetadata`) so kubectl can add the NAMESPACE column. Columns per kind are data
(`COLUMNS`); kinds not listed get NAME and AGE, as custom resources without printer columns do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

Cell = Callable[[dict[str, Any], datetime], Any]


def age(obj: dict[str, Any], now: datetime) -> str:
    stamp = obj.get("metadata", {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    seconds = max(int((now - created).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _pod_ready(obj: dict[str, Any], now: datetime) -> str:
    statuses = obj.get("status", {}).get("containerStatuses") or []
    total = len(obj.get("spec", {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(obj: dict[str, Any], now: datetime) -> str:
    """STATUS as the API server's pod printer shows it: a waiting or terminated container's
    reason (CrashLoopBackOff, ImagePullBackOff, Error) wins over the phase."""
    if obj.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    status = obj.get("status", {})
    for prefix, key in (("Init:", "initContainerStatuses"), ("", "containerStatuses")):
        for container in status.get(key) or []:
            state = container.get("state") or {}
            reason = (state.get("waiting") or state.get("terminated") or {}).get("reason")
            if reason and not (prefix and reason == "Completed"):
                return prefix + reason
    return str(status.get("phase", ""))


def _restarts(obj: dict[str, Any], now: datetime) -> int:
    statuses = obj.get("status", {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount") or 0) for s in statuses)


def _ports(obj: dict[str, Any], now: datetime) -> str:
    ports = obj.get("spec", {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _get(*path: str, default: Any = "") -> Cell:
    def cell(obj: dict[str, Any], now: datetime) -> Any:
        cur: Any = obj
        for part in path:
            cur = cur.get(part) if isinstance(cur, dict) else None
        return default if cur is None else cur

    return cell


NAME: tuple[str, Cell] = ("Name", _get("metadata", "name"))
AGE: tuple[str, Cell] = ("Age", age)
COLUMNS: dict[str, list[tuple[str, Cell]]] = {
    "Pod": [
        NAME,
        ("Ready", _pod_ready),
        ("Status", _pod_status),
        ("Restarts", _restarts),
        AGE,
    ],
    "Deployment": [
        NAME,
        (
            "Ready",
            lambda o, n: (
                f"{o.get('status', {}).get('readyReplicas', 0)}/"
                f"{o.get('spec', {}).get('replicas', 0)}"
            ),
        ),
        ("Up-to-date", _get("status", "updatedReplicas", default=0)),
        ("Available", _get("status", "availableReplicas", default=0)),
        AGE,
    ],
    "Namespace": [NAME, ("Status", _get("status", "phase")), AGE],
    "Service": [
        NAME,
        ("Type", _get("spec", "type")),
        ("Cluster-IP", _get("spec", "clusterIP", default="<none>")),
        ("External-IP", lambda o, n: "<none>"),
        ("Port(s)", _ports),
        AGE,
    ],
}


def _json_path(path: str) -> Cell:
    """A cell for a CRD printer column's simple JSONPath (`.spec.port`, `.status.items[0].x`)."""
    steps: list[str | int] = [
        int(index) if index else name for name, index in re.findall(r"\.([\w-]+)|\[(\d+)\]", path)
    ]

    def cell(obj: dict[str, Any], now: datetime) -> Any:
        cur: Any = obj
        for step in steps:
            if isinstance(step, int):
                cur = cur[step] if isinstance(cur, list) and step < len(cur) else None
            else:
                cur = cur.get(step) if isinstance(cur, dict) else None
        return "" if cur is None else cur

    return cell


def _stamp_age(path: str) -> Cell:
    value = _json_path(path)

    def cell(obj: dict[str, Any], now: datetime) -> Any:
        stamp = value(obj, now)
        return age({"metadata": {"creationTimestamp": stamp}}, now) if stamp else "<unknown>"

    return cell


def crd_columns(crd: dict[str, Any] | None, version: str) -> list[tuple[str, Cell]] | None:
    """NAME plus a CRD version's additionalPrinterColumns (priority 0), if it declares any."""
    for v in ((crd or {}).get("spec") or {}).get("versions") or []:
        declared = v.get("additionalPrinterColumns") if v.get("name") == version else None
        if declared:
            return [NAME] + [
                (
                    c["name"],
                    _stamp_age(c["jsonPath"])
                    if c.get("type") == "date"
                    else _json_path(c["jsonPath"]),
                )
                for c in declared
                if not c.get("priority")
            ]
    return None


def wants_table(accept: str) -> bool:
    return "as=Table" in accept.replace(" ", "")


def to_table(
    kind: str,
    objects: list[dict[str, Any]],
    now: datetime,
    resource_version: str,
    columns: list[tuple[str, Cell]] | None = None,
) -> dict[str, Any]:
    columns = columns or COLUMNS.get(kind, [NAME, AGE])
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": title,
                "type": "string",
                "format": "name" if title == "Name" else "",
                "description": title,
                "priority": 0,
            }
            for title, _ in columns
        ],
        "rows": [
            {
                "cells": [cell(obj, now) for _, cell in columns],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata", {}),
                },
            }
            for obj in objects
        ],
    }
