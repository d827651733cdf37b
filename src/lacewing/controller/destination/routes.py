"""Which HTTPRoutes the destination controller serves, and the status each one gets.

Both sources hand `accept(objects, services)` the HTTPRoute objects they know (Kubernetes
dicts of `gateway.networking.k8s.io` or `policy.lacewing.io`) and the Services of the same
`Directory`. Each object is parsed (`core.routes.parse_route`: one reason per problem), then
its backendRefs are looked up among the Services (a missing Service or port is
`BackendNotFound`). An accepted route becomes a `RouteDoc`: the object reduced to what
proxies read (apiVersion, kind, name, namespace, creationTimestamp, annotations, spec),
as canonical JSON, so an unchanged route republished compares equal and no stream writes.

A Service that carries timeout / retry / failure-accrual annotations
(`core.routes.ROUTE_ANNOTATIONS`, as Linkerd reads them from Services) and that no accepted
route attaches to gets a default route (`default_route`: one rule, no match, to the Service
itself, with those annotations, named `service-default`), so its requests get timeouts and
retries without any HTTPRoute. An HTTPRoute attached to that one Service replaces it and
inherits those annotations under its own (the route's win, key by key), as Linkerd's
route annotations override the Service's; a route with several parent Services keeps only
its own.

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

__all__ = ["DEFAULT_ROUTE", "Verdict", "accept", "default_route", "wire_form"]

DEFAULT_ROUTE = "service-default"  # the name of a Service's default route (in metrics too)


@dataclass(frozen=True)
class Verdict:
    namespace: str
    name: str
    accepted: bool
    reason: str
    message: str
    kind: str = "HTTPRoute"  # "Service": its annotations, as its default route


def default_route(service: Service) -> dict[str, Any]:
    """The route a Service's own annotations ask for: every request, to the Service itself."""
    return {"apiVersion": "policy.lacewing.io/v1beta1", "kind": "HTTPRoute",
            "metadata": {"name": DEFAULT_ROUTE, "namespace": service.namespace,
                         "annotations": dict(service.annotations)},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": service.name}],
                     "rules": [{}]}}  # fmt: skip


def wire_form(obj: dict[str, Any]) -> str:
    """The part of a route object proxies read, as canonical JSON."""
    meta = obj.get("metadata") or {}
    keep = {k: meta[k] for k in ("name", "namespace", "creationTimestamp", "annotations")
            if k in meta}  # fmt: skip
    reduced = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": keep,
               "spec": obj.get("spec")}  # fmt: skip
    return json.dumps(reduced, sort_keys=True, separators=(",", ":"))


def _with_defaults(obj: dict[str, Any], defaults: dict[str, str]) -> dict[str, Any]:
    """The route with its Service's annotations under its own (its own win, key by key);
    the route as it is if the two together do not parse."""
    meta = obj.get("metadata") or {}
    own = meta.get("annotations") or {}
    if all(key in own for key in defaults):
        return obj
    merged = {**obj, "metadata": {**meta, "annotations": {**defaults, **own}}}
    try:
        parse_route(merged)
    except RouteError:
        return obj
    return merged


def accept(
    objects: Iterable[dict[str, Any]], services: Iterable[Service]
) -> tuple[tuple[RouteDoc, ...], tuple[Verdict, ...]]:
    """(the routes to serve, a verdict for every object, in order, then for each Service
    whose annotations do not parse)."""
    services = list(services)
    ports = {(s.namespace, s.name): {p.port for p in s.ports} for s in services}

    def exists(name: str, namespace: str, port: int | None) -> bool:
        known = ports.get((namespace, name))
        return known is not None and (port is None or port in known)

    docs: list[RouteDoc] = []
    verdicts: list[Verdict] = []
    defaults: dict[tuple[str, str], dict[str, Any]] = {}  # Services' valid default routes
    bad_services: list[Verdict] = []
    for service in services:
        if not service.annotations:
            continue
        try:
            parse_route(default := default_route(service))
        except RouteError as exc:
            bad_services.append(Verdict(service.namespace, service.name, False, exc.reason,
                                        str(exc), kind="Service"))  # fmt: skip
            continue
        defaults[(service.namespace, service.name)] = default
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
        served = obj
        owners = {(p.namespace, p.name) for p in route.parents}
        inherited = defaults.get(owners.pop()) if len(owners) == 1 else None
        if inherited is not None:
            served = _with_defaults(obj, inherited["metadata"]["annotations"])
        docs.append(RouteDoc(route.namespace, route.name, parents, wire_form(served)))
    attached = {(ns, name) for doc in docs for ns, name, _ in doc.parents}
    for (ns, name), default in defaults.items():
        if (ns, name) not in attached:
            docs.append(RouteDoc(ns, DEFAULT_ROUTE, ((ns, name, None),), wire_form(default)))
    verdicts += bad_services
    docs.sort(key=lambda d: (d.namespace, d.name))
    return tuple(docs), tuple(verdicts)
