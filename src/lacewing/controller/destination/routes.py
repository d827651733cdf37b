"""Which HTTPRoutes the destination controller serves, and the status each one gets.

Both sources hand `accept(objects, services)` the HTTPRoute objects they know (Kubernetes
dicts of `gateway.networking.k8s.io` or `policy.lacewing.io`) and the Services of the same
`Directory`. Each object is parsed (`core.routes.parse_route`: one reason per problem), then
its backendRefs are looked up among the Services (a missing Service or port is
`BackendNotFound`). An accepted route becomes a `RouteDoc`: the object reduced to what
proxies read (apiVersion, kind, name, namespace, creationTimestamp, annotations, spec),
as canonical JSON, so an unchanged route republished compares equal and no stream writes.

Every object also gets its `Verdict`: the conditions (`Accepted`, `ResolvedRefs`) for its
`status.parents[]` and the one-line reason when rejected; a source that can write status
(Kubernetes) writes them, the local source logs rejections. Rejected routes are left out, so
a proxy keeps what it had from the routes that are still valid. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lacewing.controller.destination.directory import RouteDoc, Service
from lacewing.core.routes import RouteError, missing_backends, parse_route

__all__ = ["Verdict", "accept", "wire_form"]


@dataclass(frozen=True)
class Verdict:
    namespace: str
    name: str
    accepted: bool
    reason: str
    message: str


def wire_form(obj: dict[str, Any]) -> str:
    """The part of a route object proxies read, as canonical JSON."""
    meta = obj.get("metadata") or {}
    keep = {k: meta[k] for k in ("name", "namespace", "creationTimestamp", "annotations")
            if k in meta}  # fmt: skip
    reduced = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": keep,
               "spec": obj.get("spec")}  # fmt: skip
    return json.dumps(reduced, sort_keys=True, separators=(",", ":"))


def accept(
    objects: Iterable[dict[str, Any]], services: Iterable[Service]
) -> tuple[tuple[RouteDoc, ...], tuple[Verdict, ...]]:
    """(the routes to serve, a verdict for every object)."""
    ports = {(s.namespace, s.name): {p.port for p in s.ports} for s in services}

    def exists(name: str, namespace: str, port: int | None) -> bool:
        known = ports.get((namespace, name))
        return known is not None and (port is None or port in known)

    docs: list[RouteDoc] = []
    verdicts: list[Verdict] = []
    for obj in objects:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        ns, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
        try:
            route = parse_route(obj)
            missing = missing_backends(route, exists)
            if missing is not None:
                raise RouteError("BackendNotFound", missing)
        except RouteError as exc:
            verdicts.append(Verdict(ns, name, False, exc.reason, str(exc)))
            continue
        verdicts.append(Verdict(ns, name, True, "Accepted", "route accepted"))
        parents = tuple((p.namespace, p.name, p.port) for p in route.parents)
        docs.append(RouteDoc(route.namespace, route.name, parents, wire_form(obj)))
    docs.sort(key=lambda d: (d.namespace, d.name))
    return tuple(docs), tuple(verdicts)
