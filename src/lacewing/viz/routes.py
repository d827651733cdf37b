"""`viz routes`: per-route golden metrics from the route families the proxies export (pure).

Route metrics exist on the client's side only (`outbound_http_route_*`, `outbound_grpc_route_*`,
see `lacewing.proxy.metrics.routes`): the proxy that matched the request against an HTTPRoute
or GRPCRoute counts it under `parent_* / route_*` labels, and Prometheus adds the client's own
`namespace`, `pod`, `deployment`... So, as Linkerd's `viz routes`:

    routes svc/NAME -n NS                 the routes attached to Service NS/NAME, every client
                                          L: parent_namespace=NS, parent_name=NAME
    routes KIND/NAME -n NS [--to svc/T]   the routes KIND/NAME's pods took (KIND deploy, sts,
           [--to-namespace TNS]           ds, pod), optionally only those of Service TNS/T
                                          L: namespace=NS, KIND=NAME [, parent_namespace=TNS,
                                             parent_name=T]

and, with G = parent_namespace, parent_name, parent_port, route_kind, route_namespace,
route_name and N = {__name__=~"outbound_(http|grpc)_route_..."} (both protocols at once):

    statuses  sum(increase(N_request_statuses_total{L}[W])) by (G, http_status, grpc_status)
    retries   sum(increase(N_retry_requests_total{L}[W])) by (G)
    latency   histogram_quantile(q, sum(rate(N_request_duration_seconds_bucket{L}[W]))
                                     by (le, G))  (seconds; shown in ms)

SUCCESS is the share of requests answered without a 5xx (HTTP; no answer is a failure) or
with grpc-status 0 (gRPC), over the window; RPS is requests / window; ACTUAL_RPS (wide)
counts the retries the proxies sent too. Requests that matched no route are not counted by
the route families, so they are not here (Linkerd's `[DEFAULT]` row); `viz stat` has them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from lacewing.errors import UsageError
from lacewing.viz.promql import KINDS, QUANTILES, Resource

__all__ = ["RouteRow", "RoutesRequest", "parse_target", "render_routes", "route_rows"]

Series = tuple[Mapping[str, str], float]
GROUP = ("parent_namespace", "parent_name", "parent_port", "route_kind", "route_namespace",
         "route_name")  # fmt: skip
_WORKLOADS = ("deployment", "statefulset", "daemonset", "pod")
_FAMILY = "outbound_(http|grpc)_route_"


@dataclass(frozen=True)
class RoutesRequest:
    resource: Resource  # a Service, or a workload / pod (a name is required)
    namespace: str
    window: str  # a Prometheus duration
    to: Resource | None = None  # a Service
    to_namespace: str | None = None


@dataclass(frozen=True)
class RouteRow:
    route: str
    route_kind: str
    route_namespace: str
    service: str  # the parent Service
    parent_namespace: str
    parent_port: str
    requests: float
    successes: float
    retries: float
    window: float
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    latency_ms_p99: float | None

    @property
    def success(self) -> float | None:
        return self.successes / self.requests if self.requests else None

    @property
    def rps(self) -> float:
        return self.requests / self.window if self.window > 0 else 0.0

    @property
    def actual_rps(self) -> float:
        return (self.requests + self.retries) / self.window if self.window > 0 else 0.0


def parse_target(text: str, flag: str) -> Resource:
    """KIND/NAME for `viz routes` (a name required; svc, deploy, sts, ds, pod)."""
    kind, _, name = text.partition("/")
    known = KINDS.get(kind.lower())
    if known not in ("service", *_WORKLOADS) or (flag == "--to" and known != "service"):
        kinds = "svc" if flag == "--to" else "svc, deploy, sts, ds or pod"
        raise UsageError(f"cannot show routes of {text!r} ({flag})", hint=f"use {kinds}/NAME")
    if not name:
        raise UsageError(f"{flag} {text!r} names no resource", hint=f"e.g. {kind}/web")
    return Resource(known, name)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def selector(request: RoutesRequest) -> str:
    res = request.resource
    if res.kind == "service":
        labels = {"parent_namespace": request.namespace, "parent_name": res.name or ""}
    else:
        labels = {"namespace": request.namespace, res.kind: res.name or ""}
        if request.to is not None:
            labels["parent_namespace"] = request.to_namespace or request.namespace
            labels["parent_name"] = request.to.name or ""
    return ", ".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


def queries(request: RoutesRequest) -> dict[str, str]:
    sel, w, by = selector(request), request.window, ", ".join(GROUP)
    out = {
        "statuses": f'sum(increase({{__name__=~"{_FAMILY}request_statuses_total", {sel}}}[{w}]))'
        f" by ({by}, http_status, grpc_status)",
        "retries": f'sum(increase({{__name__=~"{_FAMILY}retry_requests_total", {sel}}}[{w}]))'
        f" by ({by})",
    }
    for q in QUANTILES:
        out[f"p{round(q * 100)}"] = (
            f"histogram_quantile({q}, sum(rate({{__name__=~"
            f'"{_FAMILY}request_duration_seconds_bucket", {sel}}}[{w}])) by (le, {by}))'
        )
    return out


def _ok(labels: Mapping[str, str]) -> bool:
    if labels.get("route_kind") == "GRPCRoute":
        return labels.get("grpc_status") == "0"
    status = labels.get("http_status", "")
    return status.isdigit() and int(status) < 500


def route_rows(ask: Callable[[str], Sequence[Series]], request: RoutesRequest,
               window_seconds: float) -> list[RouteRow]:  # fmt: skip
    """Ask Prometheus (`ask(promql)`) and make one row per route."""
    asked = {name: ask(promql) for name, promql in queries(request).items()}

    def key(labels: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(g, "") for g in GROUP)

    counts: dict[tuple[str, ...], list[float]] = {}
    for labels, value in asked["statuses"]:
        c = counts.setdefault(key(labels), [0.0, 0.0])
        c[0] += value
        c[1] += value if _ok(labels) else 0.0
    retries = {key(labels): value for labels, value in asked["retries"]}
    latency = {
        name: {key(labels): v * 1000.0 for labels, v in asked[name] if math.isfinite(v)}
        for name in ("p50", "p95", "p99")
    }
    rows = [
        RouteRow(
            route=k[5],
            route_kind=k[3],
            route_namespace=k[4],
            service=k[1],
            parent_namespace=k[0],
            parent_port=k[2],
            requests=total,
            successes=ok,
            retries=retries.get(k, 0.0),
            window=window_seconds,
            latency_ms_p50=latency["p50"].get(k),
            latency_ms_p95=latency["p95"].get(k),
            latency_ms_p99=latency["p99"].get(k),
        )
        for k, (total, ok) in counts.items()
    ]
    return sorted(rows, key=lambda r: (r.parent_namespace, r.service, r.route))


COLUMNS = ("ROUTE", "SERVICE", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99")
WIDE = ("ROUTE", "KIND", "SERVICE", "PORT", "EFFECTIVE_SUCCESS", "EFFECTIVE_RPS", "ACTUAL_RPS",
        "LATENCY_P50", "LATENCY_P95", "LATENCY_P99")  # fmt: skip


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def _cells(row: RouteRow, wide: bool) -> list[str]:
    success = "-" if row.success is None else f"{row.success * 100:.2f}%"
    lat = [_ms(row.latency_ms_p50), _ms(row.latency_ms_p95), _ms(row.latency_ms_p99)]
    if wide:
        return [row.route, row.route_kind, row.service, row.parent_port, success,
                f"{row.rps:.2f}", f"{row.actual_rps:.2f}", *lat]  # fmt: skip
    return [row.route, row.service, success, f"{row.rps:.2f}", *lat]


def render_routes(rows: Sequence[RouteRow], output: str) -> str:
    if output == "json":
        listed = [{**asdict(r), "success": r.success, "rps": r.rps, "actual_rps": r.actual_rps}
                  for r in rows]  # fmt: skip
        return json.dumps(listed, indent=2) + "\n"
    wide = output == "wide"
    table = [list(WIDE if wide else COLUMNS)] + [_cells(r, wide) for r in rows]
    left = 4 if wide else 2  # names left-aligned, figures right-aligned
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = []
    for line in table:
        parts = [c.ljust(w) for c, w in zip(line[:left], widths[:left], strict=True)]
        parts += [c.rjust(w) for c, w in zip(line[left:], widths[left:], strict=True)]
        lines.append("   ".join(parts).rstrip())
    return "\n".join(lines) + "\n"
