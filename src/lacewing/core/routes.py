"""HTTP routes (Gateway API `HTTPRoute` attached to a Service), parsed into frozen values.

`parse_route(obj)` takes one Kubernetes object (a dict, as the API or a YAML file gives it)
of kind `HTTPRoute` in `gateway.networking.k8s.io/v1` or our copy `policy.lacewing.io/v1`,
and returns a `Route`, or raises `RouteError` with a Gateway API condition *reason* and one
line naming the offending field. Only what a mesh (the GAMMA pattern) uses is read:

    metadata: name, namespace, creationTimestamp, annotations (retries, timeouts)
    spec.parentRefs[]        kind Service (group ""); name, namespace, port
    spec.rules[].matches[]   path {Exact | PathPrefix | RegularExpression}, headers[],
                             queryParams[] (Exact | RegularExpression), method
    spec.rules[].filters[]   RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect;
                             in policy.lacewing.io routes also FaultInjection (below)
    spec.rules[].backendRefs[]  kind Service: name, namespace, port, weight (default 1)
    spec.rules[].timeouts    request, backendRequest (Gateway API durations; 0s = none)

`spec.hostnames` are ignored, as GAMMA asks of routes attached to a Service. A rule without
matches matches every request (PathPrefix "/"); a rule without backendRefs sends to the
parent Service itself. What is rejected, and why (reasons as `status.parents[].conditions`
take them):

    UnsupportedValue   invalid regular expression, unknown filter type, weights summing
                       to zero, a bad duration, a field of the wrong shape
    NoMatchingParent   no parentRef of kind Service
    BackendNotFound    (by the controller, `missing_backends`) a backendRef names a
                       Service or port that does not exist

Fault injection, which Gateway API lacks (Istio users rely on it), is our filter, so only
`policy.lacewing.io` routes may carry it:

    - type: FaultInjection
      faultInjection:
        abort: {percent: 10, httpStatus: 503}   # answer 10% of requests 503, unsent
        delay: {percent: 5, fixedDelay: 100ms}  # hold 5% of requests 100 ms first

Retries and timeouts may also come from annotations on the route (Linkerd's, in our
domain): `retry.lacewing.io/http: 5xx,gateway-error,429,500-504`, `retry.lacewing.io/limit`
(attempts after the first, default 1), `retry.lacewing.io/timeout` (per attempt),
`timeout.lacewing.io/request` (the whole request, when the rule sets none). Circuit
breaking: `balancer.lacewing.io/failure-accrual: consecutive` makes 5xx answers count as
endpoint failures, ejecting an endpoint after
`balancer.lacewing.io/failure-accrual-consecutive-max-failures` (default 7) in a row.

Pure: no I/O; the regular expressions are compiled here once (Python `re`, full match).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from lacewing.core.durations import DurationError, DurationSyntax, parse_duration

__all__ = [
    "API_GROUPS",
    "ROUTE_ANNOTATIONS",
    "BackendRef",
    "Fault",
    "HeaderMatch",
    "HeaderModifier",
    "Match",
    "ParentRef",
    "PathMatch",
    "Redirect",
    "RetryPolicy",
    "Route",
    "RouteError",
    "Rule",
    "missing_backends",
    "parse_route",
    "route_conditions",
]

API_GROUPS: Final = ("gateway.networking.k8s.io", "policy.lacewing.io")
KIND: Final = "HTTPRoute"
PATH_KINDS: Final = ("Exact", "PathPrefix", "RegularExpression")
VALUE_KINDS: Final = ("Exact", "RegularExpression")
METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
REDIRECT_CODES: Final = frozenset({301, 302, 303, 307, 308})
# Gateway API durations (GEP-2257): up to four `NUMBER UNIT` pieces, h/m/s/ms, whole numbers
GATEWAY_DURATION: Final = DurationSyntax(units=("h", "m", "s", "ms"), fractions=False)
RETRY_HTTP: Final = "retry.lacewing.io/http"
RETRY_LIMIT: Final = "retry.lacewing.io/limit"
RETRY_TIMEOUT: Final = "retry.lacewing.io/timeout"
TIMEOUT_REQUEST: Final = "timeout.lacewing.io/request"
ACCRUAL: Final = "balancer.lacewing.io/failure-accrual"
ACCRUAL_MAX: Final = "balancer.lacewing.io/failure-accrual-consecutive-max-failures"
MAX_RETRY_LIMIT: Final = 10
# The annotations that configure a route's rules; a Service may carry them too (its default).
ROUTE_ANNOTATIONS: Final = (RETRY_HTTP, RETRY_LIMIT, RETRY_TIMEOUT, TIMEOUT_REQUEST, ACCRUAL,
                            ACCRUAL_MAX)  # fmt: skip


class RouteError(ValueError):
    """A route that cannot be accepted: `reason` for its status, the message for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _bad(where: str, message: str) -> RouteError:
    return RouteError("UnsupportedValue", f"{where}: {message}")


@dataclass(frozen=True)
class ParentRef:
    name: str
    namespace: str
    port: int | None = None


@dataclass(frozen=True)
class PathMatch:
    kind: str  # one of PATH_KINDS
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _prefix: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_prefix", self.value.rstrip("/"))

    def matches(self, path: str) -> bool:
        if self.kind == "PathPrefix":
            prefix = self._prefix
            # element-wise: /foo matches /foo and /foo/bar, never /foobar
            return path.startswith(prefix) and (
                len(path) == len(prefix) or path[len(prefix)] == "/"
            )
        if self.kind == "Exact":
            return path == self.value
        assert self.regex is not None
        return self.regex.fullmatch(path) is not None


@dataclass(frozen=True)
class HeaderMatch:
    """A header (name lower-cased) or a query parameter, compared with its first value."""

    name: str
    value: str
    kind: str = "Exact"
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.regex is not None:
            return self.regex.fullmatch(value) is not None
        return value == self.value


@dataclass(frozen=True)
class Match:
    path: PathMatch = PathMatch("PathPrefix", "/")
    headers: tuple[HeaderMatch, ...] = ()
    query: tuple[HeaderMatch, ...] = ()
    method: str | None = None


@dataclass(frozen=True)
class HeaderModifier:
    """Set (replace), add (append) and remove headers; names compared case-insensitively."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Redirect:
    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    status: int = 302
    full_path: str | None = None  # ReplaceFullPath
    prefix: str | None = None  # ReplacePrefixMatch


@dataclass(frozen=True)
class Fault:
    abort_percent: float = 0.0
    abort_status: int = 503
    delay_percent: float = 0.0
    delay: float = 0.0  # seconds


@dataclass(frozen=True)
class BackendRef:
    name: str
    namespace: str
    port: int | None
    weight: int = 1

    def authority(self, cluster_domain: str, default_port: int | None) -> str:
        port = self.port if self.port is not None else default_port
        return f"{self.name}.{self.namespace}.svc.{cluster_domain}:{port}"


@dataclass(frozen=True)
class RetryPolicy:
    statuses: frozenset[int]
    limit: int = 1
    timeout: float | None = None  # per attempt


@dataclass(frozen=True)
class Rule:
    matches: tuple[Match, ...]
    backends: tuple[BackendRef, ...] = ()  # empty: the parent Service
    request_headers: HeaderModifier | None = None
    response_headers: HeaderModifier | None = None
    redirect: Redirect | None = None
    fault: Fault | None = None
    timeout: float | None = None  # timeouts.request
    backend_timeout: float | None = None  # timeouts.backendRequest
    retry: RetryPolicy | None = None
    failure_accrual: int | None = None  # consecutive 5xx that eject an endpoint


@dataclass(frozen=True)
class Route:
    name: str
    namespace: str
    group: str
    parents: tuple[ParentRef, ...]
    rules: tuple[Rule, ...]
    created: str = ""  # RFC 3339, compared as text (it sorts like time)
    kind: str = KIND

    def attached_to(self, name: str, namespace: str, port: int | None = None) -> bool:
        return any(
            p.name == name and p.namespace == namespace and (p.port is None or port is None
                                                             or p.port == port)
            for p in self.parents
        )  # fmt: skip


# -- readers: each validates one field and names it on failure -----------------------------
def _map(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(where, "must be a map")
    return value


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(where, "must be a list")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(where, "must be a non-empty string")
    return value


def _port(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise _bad(where, "must be a port number from 1 to 65535")
    return value


def _regex(text: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise _bad(where, f"invalid regular expression {text!r}: {exc}") from None


def _duration(value: object, where: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(where, "must be a duration such as 500ms or 1m30s")
    try:
        seconds = parse_duration(value, GATEWAY_DURATION)
    except DurationError:
        raise _bad(where, f"{value!r} is not a duration such as 500ms or 1m30s") from None
    return seconds or None  # 0s: no timeout


def _path(value: object, where: str) -> PathMatch:
    data = _map(value, where)
    kind = data.get("type", "PathPrefix")
    text = data.get("value", "/")
    if kind not in PATH_KINDS:
        raise _bad(f"{where}.type", f"must be one of {', '.join(PATH_KINDS)}")
    text = _str(text, f"{where}.value")
    if kind == "RegularExpression":
        return PathMatch(kind, text, _regex(text, f"{where}.value"))
    if not text.startswith("/"):
        raise _bad(f"{where}.value", "must start with '/'")
    return PathMatch(kind, text)


def _value_matches(value: object, where: str, lower: bool) -> tuple[HeaderMatch, ...]:
    out = []
    for i, item in enumerate(_list(value, where)):
        at = f"{where}[{i}]"
        data = _map(item, at)
        kind = data.get("type", "Exact")
        if kind not in VALUE_KINDS:
            raise _bad(f"{at}.type", "must be Exact or RegularExpression")
        name = _str(data.get("name"), f"{at}.name")
        text = data.get("value")
        if not isinstance(text, str):
            raise _bad(f"{at}.value", "must be a string")
        regex = _regex(text, f"{at}.value") if kind == "RegularExpression" else None
        out.append(HeaderMatch(name.lower() if lower else name, text, kind, regex))
    return tuple(out)


def _match(value: object, where: str) -> Match:
    data = _map(value, where)
    method = data.get("method")
    if method is not None and method not in METHODS:
        raise _bad(f"{where}.method", f"{method!r} is not an HTTP method")
    path = _path(data["path"], f"{where}.path") if "path" in data else Match.path
    return Match(path, _value_matches(data.get("headers"), f"{where}.headers", True),
                 _value_matches(data.get("queryParams"), f"{where}.queryParams", False),
                 method)  # fmt: skip


def _modifier(value: object, where: str) -> HeaderModifier:
    data = _map(value, where)

    def pairs(key: str) -> tuple[tuple[str, str], ...]:
        out = []
        for i, item in enumerate(_list(data.get(key), f"{where}.{key}")):
            entry = _map(item, f"{where}.{key}[{i}]")
            name = _str(entry.get("name"), f"{where}.{key}[{i}].name")
            text = entry.get("value")
            if not isinstance(text, str) or "\r" in text or "\n" in text:
                raise _bad(f"{where}.{key}[{i}].value", "must be a one-line string")
            out.append((name, text))
        return tuple(out)

    remove = tuple(
        _str(n, f"{where}.remove[{i}]") for i, n in enumerate(_list(data.get("remove"), where))
    )
    return HeaderModifier(pairs("set"), pairs("add"), remove)


def _redirect(value: object, where: str) -> Redirect:
    data = _map(value, where)
    scheme = data.get("scheme")
    if scheme is not None and scheme not in ("http", "https"):
        raise _bad(f"{where}.scheme", "must be http or https")
    hostname = data.get("hostname")
    if hostname is not None:
        hostname = _str(hostname, f"{where}.hostname")
    status = data.get("statusCode", 302)
    if status not in REDIRECT_CODES:
        raise _bad(f"{where}.statusCode", "must be 301, 302, 303, 307 or 308")
    full = prefix = None
    if "path" in data:
        path = _map(data["path"], f"{where}.path")
        kind = path.get("type")
        if kind == "ReplaceFullPath":
            full = _str(path.get("replaceFullPath"), f"{where}.path.replaceFullPath")
        elif kind == "ReplacePrefixMatch":
            prefix = _str(path.get("replacePrefixMatch"), f"{where}.path.replacePrefixMatch")
        else:
            raise _bad(f"{where}.path.type", "must be ReplaceFullPath or ReplacePrefixMatch")
    return Redirect(scheme, hostname, _port(data.get("port"), f"{where}.port"), status, full,
                    prefix)  # fmt: skip


def _percent(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise _bad(where, "must be a number from 0 to 100")
    return float(value)


def _fault(value: object, where: str) -> Fault:
    data = _map(value, where)
    abort = _map(data.get("abort"), f"{where}.abort")
    delay = _map(data.get("delay"), f"{where}.delay")
    if not abort and not delay:
        raise _bad(where, "needs an abort or a delay")
    status = abort.get("httpStatus", 503)
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise _bad(f"{where}.abort.httpStatus", "must be a status from 200 to 599")
    seconds = _duration(delay.get("fixedDelay"), f"{where}.delay.fixedDelay") if delay else None
    if delay and seconds is None:
        raise _bad(f"{where}.delay.fixedDelay", "is required, for example 100ms")
    return Fault(_percent(abort.get("percent", 100), f"{where}.abort.percent") if abort else 0.0,
                 status,
                 _percent(delay.get("percent", 100), f"{where}.delay.percent") if delay else 0.0,
                 seconds or 0.0)  # fmt: skip


_FILTERS: dict[str, tuple[str, str, Callable[[object, str], object]]] = {
    # type -> (its field in the filter, the Rule attribute it fills, reader)
    "RequestHeaderModifier": ("requestHeaderModifier", "request_headers", _modifier),
    "ResponseHeaderModifier": ("responseHeaderModifier", "response_headers", _modifier),
    "RequestRedirect": ("requestRedirect", "redirect", _redirect),
    "FaultInjection": ("faultInjection", "fault", _fault),  # ours: policy.lacewing.io only
}


def _backend(value: object, where: str, namespace: str) -> BackendRef:
    data = _map(value, where)
    group, kind = data.get("group", ""), data.get("kind", "Service")
    if group not in ("", "core") or kind != "Service":
        raise RouteError("InvalidKind", f"{where}: only backendRefs of kind Service are served")
    weight = data.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 1000000:
        raise _bad(f"{where}.weight", "must be a number from 0 to 1000000")
    ns = data.get("namespace", namespace)
    return BackendRef(_str(data.get("name"), f"{where}.name"), _str(ns, f"{where}.namespace"),
                      _port(data.get("port"), f"{where}.port"), weight)  # fmt: skip


def _rule(value: object, where: str, namespace: str, retry: RetryPolicy | None,
          default_timeout: float | None, group: str, accrual: int | None) -> Rule:  # fmt: skip
    data = _map(value, where)
    matches = tuple(
        _match(m, f"{where}.matches[{i}]") for i, m in enumerate(_list(data.get("matches"), where))
    ) or (Match(),)
    attrs: dict[str, Any] = {}
    for i, item in enumerate(_list(data.get("filters"), f"{where}.filters")):
        at = f"{where}.filters[{i}]"
        entry = _map(item, at)
        kind = entry.get("type")
        known = _FILTERS.get(kind) if isinstance(kind, str) else None
        if known is None:
            raise _bad(f"{at}.type", f"unknown filter {kind!r} (served: {', '.join(_FILTERS)})")
        key, attr, reader = known
        if attr == "fault" and group != "policy.lacewing.io":
            raise _bad(f"{at}.type", "FaultInjection is a policy.lacewing.io filter: write the "
                                     "route as a policy.lacewing.io HTTPRoute")  # fmt: skip
        if attr in attrs:
            raise _bad(at, f"{kind} appears twice in one rule")
        attrs[attr] = reader(entry.get(key), f"{at}.{key}")
    backends = tuple(
        _backend(b, f"{where}.backendRefs[{i}]", namespace)
        for i, b in enumerate(_list(data.get("backendRefs"), f"{where}.backendRefs"))
    )
    if backends and not sum(b.weight for b in backends):
        raise _bad(f"{where}.backendRefs", "the weights sum to zero: no backend can be chosen")
    timeouts = _map(data.get("timeouts"), f"{where}.timeouts")
    request = _duration(timeouts.get("request"), f"{where}.timeouts.request")
    backend = _duration(timeouts.get("backendRequest"), f"{where}.timeouts.backendRequest")
    if request is not None and backend is not None and backend > request:
        raise _bad(f"{where}.timeouts.backendRequest", "must not be longer than request")
    if "request" not in timeouts:
        request = default_timeout
    return Rule(matches, backends, timeout=request, backend_timeout=backend, retry=retry,
                failure_accrual=accrual, **attrs)  # fmt: skip


def _statuses(text: str, where: str) -> frozenset[int]:
    codes: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if part == "5xx":
            codes.update(range(500, 600))
        elif part == "gateway-error":
            codes.update((502, 503, 504))
        elif re.fullmatch(r"\d{3}(-\d{3})?", part):
            low, _, high = part.partition("-")
            codes.update(range(int(low), int(high or low) + 1))
        else:
            raise _bad(where, f"{part!r} is not 5xx, gateway-error, a status or a range")
    return frozenset(codes)


def _retry(annotations: Mapping[str, Any]) -> RetryPolicy | None:
    text = annotations.get(RETRY_HTTP)
    if text is None:
        return None
    where = f"metadata.annotations[{RETRY_HTTP}]"
    if not isinstance(text, str):
        raise _bad(where, "must be a string")
    limit_text = annotations.get(RETRY_LIMIT, "1")
    if not isinstance(limit_text, str) or not limit_text.isdigit():
        raise _bad(f"metadata.annotations[{RETRY_LIMIT}]", "must be a whole number")
    limit = int(limit_text)
    if limit > MAX_RETRY_LIMIT:
        raise _bad(f"metadata.annotations[{RETRY_LIMIT}]", f"must be at most {MAX_RETRY_LIMIT}")
    timeout = _duration(annotations.get(RETRY_TIMEOUT), f"metadata.annotations[{RETRY_TIMEOUT}]")
    return RetryPolicy(_statuses(text, where), limit, timeout)


def _accrual(annotations: Mapping[str, Any]) -> int | None:
    kind = annotations.get(ACCRUAL)
    if kind is None:
        return None
    if kind != "consecutive":
        raise _bad(f"metadata.annotations[{ACCRUAL}]", "the one kind served is 'consecutive'")
    text = annotations.get(ACCRUAL_MAX, "7")
    if not isinstance(text, str) or not text.isdigit() or not 0 < int(text) <= 1000:
        raise _bad(f"metadata.annotations[{ACCRUAL_MAX}]", "must be a number from 1 to 1000")
    return int(text)


def parse_route(obj: object) -> Route:
    """One HTTPRoute object -> `Route`; `RouteError` (reason + one line) if it cannot be served."""
    data = _map(obj, "(route)")
    api, kind = data.get("apiVersion", ""), data.get("kind")
    group = api.partition("/")[0] if isinstance(api, str) else ""
    if kind != KIND or group not in API_GROUPS:
        raise _bad("kind", f"expected an HTTPRoute of {' or '.join(API_GROUPS)}")
    meta = _map(data.get("metadata"), "metadata")
    name = _str(meta.get("name"), "metadata.name")
    namespace = meta.get("namespace", "default")
    namespace = _str(namespace, "metadata.namespace")
    annotations = _map(meta.get("annotations"), "metadata.annotations")
    spec = _map(data.get("spec"), "spec")
    parents = []
    for i, item in enumerate(_list(spec.get("parentRefs"), "spec.parentRefs")):
        ref = _map(item, f"spec.parentRefs[{i}]")
        if ref.get("kind", "Gateway") == "Service" and ref.get("group", "") in ("", "core"):
            at = f"spec.parentRefs[{i}]"
            parents.append(ParentRef(_str(ref.get("name"), f"{at}.name"),
                                     _str(ref.get("namespace", namespace), f"{at}.namespace"),
                                     _port(ref.get("port"), f"{at}.port")))  # fmt: skip
    if not parents:
        raise RouteError("NoMatchingParent", "spec.parentRefs: no parent of kind Service")
    retry, accrual = _retry(annotations), _accrual(annotations)
    default_timeout = _duration(annotations.get(TIMEOUT_REQUEST),
                                f"metadata.annotations[{TIMEOUT_REQUEST}]")  # fmt: skip
    rules = tuple(
        _rule(r, f"spec.rules[{i}]", namespace, retry, default_timeout, group, accrual)
        for i, r in enumerate(_list(spec.get("rules"), "spec.rules"))
    ) or (Rule((Match(),), timeout=default_timeout, retry=retry, failure_accrual=accrual),)
    created = meta.get("creationTimestamp", "")
    return Route(name, namespace, group, tuple(parents), rules,
                 created if isinstance(created, str) else "")  # fmt: skip


def missing_backends(route: Route, exists: Callable[[str, str, int | None], bool]) -> str | None:
    """The first backendRef naming no existing Service port (`exists(name, ns, port)`), as a
    message; None when every backend exists."""
    for i, rule in enumerate(route.rules):
        for j, ref in enumerate(rule.backends):
            if not exists(ref.name, ref.namespace, ref.port):
                port = f" port {ref.port}" if ref.port is not None else ""
                return (f"spec.rules[{i}].backendRefs[{j}]: Service "
                        f"{ref.namespace}/{ref.name}{port} does not exist")  # fmt: skip
    return None


def route_conditions(
    problem: RouteError | None, generation: int = 0, now: str = ""
) -> list[dict[str, Any]]:
    """The `status.parents[].conditions` for a route: Accepted and ResolvedRefs."""

    def cond(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
        return {"type": kind, "status": "True" if ok else "False", "reason": reason,
                "message": message, "observedGeneration": generation,
                "lastTransitionTime": now}  # fmt: skip

    if problem is None:
        return [cond("Accepted", True, "Accepted", "route accepted"),
                cond("ResolvedRefs", True, "ResolvedRefs", "every backend exists")]  # fmt: skip
    refs_ok = problem.reason not in ("BackendNotFound", "InvalidKind")
    return [cond("Accepted", False, problem.reason, str(problem)),
            cond("ResolvedRefs", refs_ok, "ResolvedRefs" if refs_ok else problem.reason,
                 "every backend exists" if refs_ok else str(problem))]  # fmt: skip
