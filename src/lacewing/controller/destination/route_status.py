"""The `status.parents[]` an HTTPRoute or GRPCRoute should carry, and when it needs writing.

Gateway API lets several controllers report on one route: each owns the entries of
`status.parents[]` with its `controllerName`. `parent_statuses(obj, verdict, controller,
now)` returns the whole list the route should have: the entries of other controllers as
they are, then one entry of ours per parentRef of kind Service (the parents this mesh
serves; a route with none is some gateway's business, and gets nothing from us), carrying
`core.routes.route_conditions` for the verdict: `Accepted` (True, or False with the reason
it was left out) and `ResolvedRefs` (False with `BackendNotFound` / `InvalidKind`).
A condition whose status did not change keeps its `lastTransitionTime`, as Kubernetes
conventions ask, so a verdict that did not change yields exactly the status already there.

`RouteStatusReporter` is what the Kubernetes source calls for every route on every
publication: it compares the wanted list with the object's (as last seen by the watch) and
submits a write only when they differ, once per object resourceVersion, so the writes it
causes (which come back as watch events) do not cause more. Pure but for `submit` and the
injectable clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from lacewing.controller.destination.routes import Verdict
from lacewing.core.routes import RouteError, route_conditions

__all__ = ["CONTROLLER_NAME", "RouteStatusReporter", "parent_statuses", "service_parents"]

CONTROLLER_NAME = "lacewing.io/destination"

Obj = dict[str, Any]


def service_parents(obj: Obj) -> list[Obj]:
    """The route's parentRefs of kind Service (core group): the parents destination serves."""
    spec = obj.get("spec")
    refs = spec.get("parentRefs") if isinstance(spec, dict) else None
    if not isinstance(refs, list):
        return []
    return [r for r in refs if isinstance(r, dict) and r.get("kind") == "Service"
            and r.get("group", "") in ("", "core")]  # fmt: skip


def _rfc3339(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def parent_statuses(obj: Obj, verdict: Verdict, controller: str, now: float) -> list[Obj]:
    status = obj.get("status")
    current = status.get("parents") if isinstance(status, dict) else None
    current = [p for p in current if isinstance(p, dict)] if isinstance(current, list) else []
    others = [p for p in current if p.get("controllerName") != controller]
    ours = {_ref_key(p.get("parentRef")): p for p in current
            if p.get("controllerName") == controller}  # fmt: skip
    meta = obj.get("metadata") or {}
    generation = meta.get("generation")
    generation = generation if isinstance(generation, int) else 0
    problem = None if verdict.accepted else RouteError(verdict.reason, verdict.message)
    wanted = []
    for ref in service_parents(obj):
        conditions = route_conditions(problem, generation, _rfc3339(now))
        old = ours.get(_ref_key(ref))
        old_conditions = old.get("conditions") if old is not None else None
        before = {c.get("type"): c for c in old_conditions or [] if isinstance(c, dict)}
        for c in conditions:
            previous = before.get(c["type"])
            if previous is not None and previous.get("status") == c["status"]:
                c["lastTransitionTime"] = (
                    previous.get("lastTransitionTime") or c["lastTransitionTime"]
                )
        wanted.append({"parentRef": dict(ref), "controllerName": controller,
                       "conditions": conditions})  # fmt: skip
    return others + wanted


def _ref_key(ref: object) -> tuple[str, ...]:
    if not isinstance(ref, dict):
        return ()
    return tuple(str(ref.get(k, "")) for k in ("group", "kind", "namespace", "name", "port"))


def _timeless(parents: list[Obj]) -> str:
    return json.dumps([{**p, "conditions": [{k: v for k, v in c.items()
                                            if k != "lastTransitionTime"}
                                           for c in p.get("conditions") or []]}
                       for p in parents], sort_keys=True)  # fmt: skip


class RouteStatusReporter:
    """Submits a route's status when it differs from what the route carries."""

    def __init__(
        self,
        submit: Callable[[str, str, str, dict[str, Any]], None],
        *,
        controller: str = CONTROLLER_NAME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.submit, self.controller, self.clock = submit, controller, clock
        # key -> (resourceVersion, status) last submitted for it, times left out
        self._sent: dict[tuple[str, str, str], tuple[str, str]] = {}

    def __call__(self, kind: str, obj: Obj, verdict: Verdict) -> None:
        meta = obj.get("metadata") or {}
        key = (kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        version = str(meta.get("resourceVersion") or "")
        wanted = parent_statuses(obj, verdict, self.controller, self.clock())
        status = obj.get("status")
        current = status.get("parents") if isinstance(status, dict) else None
        if (current or []) == wanted:
            self._sent.pop(key, None)
            return
        sent = (version, _timeless(wanted))
        if self._sent.get(key) == sent:
            return  # written for this version already; the watch has not caught up yet
        self._sent[key] = sent
        self.submit(*key, {"parents": wanted})

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self._sent.pop((kind, namespace, name), None)
