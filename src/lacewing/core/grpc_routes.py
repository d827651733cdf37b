"""gRPC routes (Gateway API `GRPCRoute` attached to a Service), parsed into the same `Route`.

A gRPC call is an HTTP/2 POST to `/<package.Service>/<Method>`, so a GRPCRoute's method
match is read as a path match and the route then goes through the same `RouteTable`
(precedence), `Router` (weights, budgets, metrics) and proxy steps as an HTTPRoute:

    method {type: Exact, service: S, method: M}    path Exact "/S/M"
    method {type: Exact, service: S}               path PathPrefix "/S" (every method of S)
    method {type: Exact, method: M}                path regex "/[^/]+/M" (M of any service)
    method {type: RegularExpression, service: RS, method: RM}
                                                   path regex "/(?:RS)/(?:RM)", a missing
                                                   one being "[^/]+"
    no method                                      every call (PathPrefix "/")

`headers[]` match as an HTTPRoute's do. Filters: RequestHeaderModifier and
ResponseHeaderModifier (GRPCRoute has no redirect), and in `policy.lacewing.io` routes our
FaultInjection (its `httpStatus` becomes a grpc-status as gRPC maps HTTP codes: 503 ->
UNAVAILABLE). Timeouts: `timeout.lacewing.io/request` (and `timeouts` where the CRD keeps
it, as ours does); an expired call is answered DEADLINE_EXCEEDED. Retries:
`retry.lacewing.io/grpc: cancelled,deadline-exceeded,internal,resource-exhausted,unavailable`
(names as Linkerd's, or numbers) with `retry.lacewing.io/limit` and `.../timeout`, retried on
the grpc-status of a trailers-only answer. Failure accrual
(`balancer.lacewing.io/failure-accrual: consecutive`) counts a call whose grpc-status is one
of `GRPC_FAILURES` (the codes gRPC maps to HTTP 5xx) as a failure of its endpoint.

What is rejected, with one reason each (as `core.routes`): a service or method that is not
a gRPC name, a match with neither, an invalid regular expression, a filter GRPCRoute does not
serve, weights summing to zero, a bad retry code. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from lacewing.core.routes import (
    _FILTERS,
    RETRY_LIMIT,
    TIMEOUT_REQUEST,
    Match,
    PathMatch,
    RetryPolicy,
    Route,
    Rule,
    _accrual,
    _bad,
    _common,
    _created,
    _duration,
    _list,
    _map,
    _regex,
    _retry,
    _rule,
    _value_matches,
)

__all__ = ["GRPC_CODES", "GRPC_FAILURES", "KIND", "RETRY_GRPC", "parse_grpc_route"]

KIND: Final = "GRPCRoute"
RETRY_GRPC: Final = "retry.lacewing.io/grpc"
GRPC_CODES: Final = {"cancelled": 1, "unknown": 2, "deadline-exceeded": 4,
                     "resource-exhausted": 8, "aborted": 10, "internal": 13,
                     "unavailable": 14}  # fmt: skip
# The grpc-status codes failure accrual counts against an endpoint: those gRPC maps to an
# HTTP 5xx (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS), as
# an HTTPRoute's accrual counts 5xx answers; the others are the caller's business.
GRPC_FAILURES: Final = frozenset({2, 4, 12, 13, 14, 15})
_SERVICE = re.compile(r"[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*")
_METHOD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_GRPC_FILTERS: Final[dict[str, tuple[str, str, Callable[[object, str], object]]]] = {
    k: v for k, v in _FILTERS.items() if k != "RequestRedirect"
}


def _name(value: object, where: str, pattern: re.Pattern[str], what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _bad(where, f"{value!r} is not a gRPC {what} name")
    return value


def _method(value: object, where: str) -> PathMatch:
    data = _map(value, where)
    kind = data.get("type", "Exact")
    service, method = data.get("service"), data.get("method")
    if service is None and method is None:
        raise _bad(where, "needs a service, a method or both")
    if kind == "Exact":
        svc = _name(service, f"{where}.service", _SERVICE, "service")
        meth = _name(method, f"{where}.method", _METHOD, "method")
        if svc is not None and meth is not None:
            return PathMatch("Exact", f"/{svc}/{meth}")
        if svc is not None:
            return PathMatch("PathPrefix", f"/{svc}")
        text = f"/[^/]+/{re.escape(str(meth))}"
        return PathMatch("RegularExpression", text, re.compile(text))
    if kind != "RegularExpression":
        raise _bad(f"{where}.type", "must be Exact or RegularExpression")
    parts = []
    for key, part in (("service", service), ("method", method)):
        if part is None:
            parts.append("[^/]+")
            continue
        if not isinstance(part, str) or not part:
            raise _bad(f"{where}.{key}", "must be a non-empty string")
        _regex(part, f"{where}.{key}")
        parts.append(part)
    text = f"/(?:{parts[0]})/(?:{parts[1]})"
    return PathMatch("RegularExpression", text, re.compile(text))


def _grpc_match(value: object, where: str) -> Match:
    data = _map(value, where)
    path = _method(data["method"], f"{where}.method") if "method" in data else Match.path
    return Match(path, _value_matches(data.get("headers"), f"{where}.headers", True))


def _grpc_retry(annotations: Mapping[str, Any]) -> RetryPolicy | None:
    text = annotations.get(RETRY_GRPC)
    if text is None:
        return _retry(annotations)
    where = f"metadata.annotations[{RETRY_GRPC}]"
    if not isinstance(text, str):
        raise _bad(where, "must be a string")
    codes = set()
    for part in (p.strip().lower() for p in text.split(",")):
        if part.isdigit() and 0 < int(part) <= 16:
            codes.add(int(part))
        elif part in GRPC_CODES:
            codes.add(GRPC_CODES[part])
        else:
            raise _bad(where, f"{part!r} is not one of {', '.join(GRPC_CODES)} or a code 1-16")
    # the limit and per-try timeout annotations are read as for HTTP routes
    base = _retry({RETRY_LIMIT: "1", **annotations, "retry.lacewing.io/http": "503"})
    assert base is not None
    return replace(base, statuses=frozenset(), grpc_codes=frozenset(codes))


def parse_grpc_route(data: Mapping[str, Any], group: str) -> Route:
    """One GRPCRoute object (kind and group already checked by `parse_route`) -> `Route`."""
    name, namespace, annotations, spec, parents = _common(data)
    retry, accrual = _grpc_retry(annotations), _accrual(annotations)
    timeout = _duration(annotations.get(TIMEOUT_REQUEST),
                        f"metadata.annotations[{TIMEOUT_REQUEST}]")  # fmt: skip
    rules = tuple(
        _rule(
            r,
            f"spec.rules[{i}]",
            namespace,
            retry,
            timeout,
            group,
            accrual,
            _grpc_match,
            _GRPC_FILTERS,
        )
        for i, r in enumerate(_list(spec.get("rules"), "spec.rules"))
    ) or (Rule((Match(),), timeout=timeout, retry=retry, failure_accrual=accrual),)
    return Route(name, namespace, group, parents, rules, _created(data), kind=KIND)
