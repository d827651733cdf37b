"""Inbound HTTP routes: HTTPRoutes whose parent is a `Server`, as Linkerd reads them.

An HTTPRoute (`gateway.networking.k8s.io/v1` or our copy `policy.lacewing.io`) with a
parentRef of kind `Server` (group `policy.lacewing.io`) describes requests that the
Server's port serves; it is what an AuthorizationPolicy with `targetRef.kind: HTTPRoute`
authorizes, and once a Server has one, a request matching none of its routes is answered
404 by the proxy (`inbound_http_route_not_found_total`). The same route may also name
Service parents: those are the outbound side's (`core.routes`), which ignores the Server
parents, as this module ignores the Service ones.

`parse_server_route(obj)` returns a `ServerRoute` (the Servers it attaches to, in its own
namespace, and its matches), `None` when the route names no Server (it is none of inbound
policy's business), or raises `RouteError` with one line naming the field. Only matches
count on the inbound side: a route whose only parents are Servers and that carries
filters, backendRefs or timeouts is refused (the inbound proxy would not apply them, and a
route that silently does less than it says is worse than one refused); on a route that
also has Service parents those fields serve the outbound side.

Matches are read by `core.routes` (same fields, same checks, same precedence in
`core.route_table.RouteTable`). Their wire form (`match_to_dict` / `match_from_dict`) is
the Gateway API's own shape, so the policy stream shows what the user wrote:

    {"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET",
     "headers": [{"type": "Exact", "name": "x-team", "value": "a"}], "queryParams": []}

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from lacewing.core.routes import API_GROUPS, HeaderMatch, Match, RouteError, Rule
from lacewing.core.routes import _match as _read_match  # one reader for both sides
from lacewing.core.routes import _rule as _read_rule

__all__ = [
    "SERVER_GROUP",
    "ServerRoute",
    "has_server_parent",
    "match_from_dict",
    "match_to_dict",
    "parse_server_route",
]

SERVER_GROUP: Final = "policy.lacewing.io"
_KIND: Final = "HTTPRoute"


@dataclass(frozen=True)
class ServerRoute:
    """An HTTPRoute as inbound policy sees it."""

    namespace: str
    name: str
    group: str  # the route's API group: what a targetRef's group names
    servers: tuple[str, ...]  # Server names, in the route's namespace
    matches: tuple[Match, ...]
    created: str = ""


def _parent_refs(obj: Mapping[str, Any]) -> list[Any]:
    spec = obj.get("spec")
    refs = spec.get("parentRefs") if isinstance(spec, Mapping) else None
    return refs if isinstance(refs, list) else []


def _is_server(ref: object) -> bool:
    return isinstance(ref, Mapping) and ref.get("kind") == "Server"


def has_server_parent(obj: Mapping[str, Any]) -> bool:
    """True when the route names at least one parent of kind Server."""
    return any(_is_server(r) for r in _parent_refs(obj))


def _fail(where: str, message: str) -> RouteError:
    return RouteError("UnsupportedValue", f"{where}: {message}")


def parse_server_route(obj: object) -> ServerRoute | None:
    """One HTTPRoute -> `ServerRoute`, None without a Server parent, `RouteError` if invalid."""
    if not isinstance(obj, Mapping):
        raise _fail("(route)", "must be a map")
    api, kind = obj.get("apiVersion", ""), obj.get("kind")
    group = api.partition("/")[0] if isinstance(api, str) else ""
    if kind != _KIND or group not in API_GROUPS:
        raise _fail("kind", f"expected an HTTPRoute of {' or '.join(API_GROUPS)}")
    refs = _parent_refs(obj)
    if not any(_is_server(r) for r in refs):
        return None
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    if not isinstance(name, str) or not name:
        raise _fail("metadata.name", "must be a non-empty string")
    if not isinstance(namespace, str):
        raise _fail("metadata.namespace", "must be a string")
    servers: list[str] = []
    outbound_too = False
    for i, ref in enumerate(refs):
        at = f"spec.parentRefs[{i}]"
        if not _is_server(ref):
            outbound_too = outbound_too or (isinstance(ref, Mapping)
                                            and ref.get("kind") == "Service")  # fmt: skip
            continue
        if ref.get("group", SERVER_GROUP) != SERVER_GROUP:
            raise _fail(f"{at}.group", f"a Server parent is in {SERVER_GROUP}")
        if ref.get("namespace", namespace) != namespace:
            raise _fail(f"{at}.namespace", f"a Server parent must be in the route's ({namespace})")
        if "port" in ref or "sectionName" in ref:
            raise _fail(at, "a Server parent takes no port or sectionName (the Server has one)")
        server = ref.get("name")
        if not isinstance(server, str) or not server:
            raise _fail(f"{at}.name", "must be a non-empty string")
        servers.append(server)
    spec = obj.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    raw_rules = spec.get("rules") or []
    if not isinstance(raw_rules, list):
        raise _fail("spec.rules", "must be a list")
    matches: list[Match] = []
    for i, raw in enumerate(raw_rules):
        where = f"spec.rules[{i}]"
        rule: Rule = _read_rule(raw, where, namespace, None, None, group, None)
        if not outbound_too:
            _inbound_only(raw, where)
        matches.extend(rule.matches)
    created = meta.get("creationTimestamp")
    return ServerRoute(namespace, name, group, tuple(dict.fromkeys(servers)),
                       tuple(matches) or (Match(),),
                       created if isinstance(created, str) else "")  # fmt: skip


def _inbound_only(raw: object, where: str) -> None:
    """A route that only Servers serve may carry nothing the inbound proxy would not do."""
    data = raw if isinstance(raw, Mapping) else {}
    for field in ("filters", "backendRefs", "timeouts"):
        if data.get(field):
            raise _fail(f"{where}.{field}", "not served on a route whose parents are Servers "
                                            "(inbound routes take matches only)")  # fmt: skip


def _value_to_dict(m: HeaderMatch) -> dict[str, str]:
    return {"type": m.kind, "name": m.name, "value": m.value}


def match_to_dict(match: Match) -> dict[str, Any]:
    out: dict[str, Any] = {"path": {"type": match.path.kind, "value": match.path.value}}
    if match.method is not None:
        out["method"] = match.method
    if match.headers:
        out["headers"] = [_value_to_dict(h) for h in match.headers]
    if match.query:
        out["queryParams"] = [_value_to_dict(q) for q in match.query]
    return out


def match_from_dict(data: object, where: str) -> Match:
    """The wire form back; `RouteError` naming the field."""
    return _read_match(data, where)
