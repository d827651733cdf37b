"""Per-route metrics: Linkerd's `outbound_http_route_*` families and the older `route_*` ones.

A route's counters live in one `HttpRouteStats`, made once per (parent Service, route) when
the proxy compiles a route table and held by the compiled rules, so a request bumps plain
attributes and builds no labels. Families (labels as Linkerd's, the parent and route parts):

    outbound_http_route_request_duration_seconds   histogram, request head -> response head
    outbound_http_route_request_statuses_total     {http_status}
    outbound_http_route_backend_requests_total     {backend_namespace, backend_name, backend_port}
    outbound_http_route_retry_requests_total       retries sent
    outbound_http_route_retry_successes_total      requests that succeeded after a retry
    outbound_http_route_retry_limit_exceeded_total out of attempts: the last answer went back
    outbound_http_route_retry_overflow_total       the retry budget said no
    route_request_total / route_response_total / route_response_latency_ms
                                                   {direction, dst, rt_route}: the older route
                                                   dashboards' families (status_code,
                                                   classification on responses)

A GRPCRoute's counters are the same, under `outbound_grpc_route_*` (Linkerd's names): its
statuses family is `outbound_grpc_route_request_statuses_total{grpc_status}` (empty: the call
ended without one), and the older `route_*` families count its requests only.

Every route family carries `parent_namespace, parent_name, parent_port, route_kind,
route_namespace, route_name`; the request that matched no route is not counted here.
"""

from __future__ import annotations

from bisect import bisect_left

from lacewing.proxy.metrics.proxy import LATENCY_BUCKETS_MS, ResponseStats
from lacewing.proxy.metrics.text import family_header, labels, number, sample

__all__ = ["DURATION_BUCKETS", "BackendStats", "HttpRouteStats", "RouteMetrics"]

DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                                       10.0)  # fmt: skip
_BOUNDS = (*DURATION_BUCKETS, float("inf"))
_FIRST, _FIRST_MS = DURATION_BUCKETS[0], LATENCY_BUCKETS_MS[0]
_MS_BOUNDS = (*LATENCY_BUCKETS_MS, float("inf"))
_PARENT_ROUTE = ("parent_namespace", "parent_name", "parent_port", "route_kind",
                 "route_namespace", "route_name")  # fmt: skip


class BackendStats:
    __slots__ = ("labels", "requests")

    def __init__(self, label_text: str) -> None:
        self.labels, self.requests = label_text, 0


class HttpRouteStats:
    """Counters of one route attached to one parent Service port."""

    __slots__ = (
        "backends",
        "buckets",
        "by_status",
        "dst",
        "grpc",
        "labels",
        "limit_exceeded",
        "overflow",
        "requests",
        "retries",
        "retry_successes",
        "route_name",
        "seconds_total",
    )  # fmt: skip

    def __init__(self, label_text: str, dst: str, route_name: str, grpc: bool = False) -> None:
        self.labels, self.dst, self.route_name = label_text, dst, route_name
        self.grpc = grpc  # a GRPCRoute: `by_status` is keyed by grpc-status (-1: none)
        self.buckets = [0] * len(_BOUNDS)
        self.seconds_total = 0.0
        self.requests = 0
        self.by_status: dict[int, ResponseStats] = {}
        self.backends: dict[tuple[str, str, int], BackendStats] = {}
        self.retries = self.retry_successes = self.limit_exceeded = self.overflow = 0

    def backend(self, namespace: str, name: str, port: int) -> BackendStats:
        key = (namespace, name, port)
        stats = self.backends.get(key)
        if stats is None:
            extra = labels(("backend_namespace", "backend_name", "backend_port"),
                           (namespace, name, str(port)))  # fmt: skip
            stats = self.backends[key] = BackendStats(f"{self.labels},{extra}")
        return stats

    def response(self, status: int, seconds: float) -> None:
        """The request ended with `status` (0: no response) after `seconds`."""
        # most requests between sidecars take under 5 ms: skip the searches for them
        self.buckets[0 if seconds <= _FIRST else bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.seconds_total += seconds
        stats = self.by_status.get(status)
        if stats is None:
            stats = self.by_status[status] = ResponseStats()
        ms = seconds * 1000.0
        stats.buckets[0 if ms <= _FIRST_MS else bisect_left(LATENCY_BUCKETS_MS, ms)] += 1
        stats.count += 1
        stats.total_ms += ms

    def grpc_response(self, code: int | None, seconds: float) -> None:
        """A gRPC call ended with grpc-status `code` (None: without one) after `seconds`."""
        self.response(-1 if code is None else code, seconds)


class RouteMetrics:
    """Every route's counters in one proxy, rendered on scrape."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, ...], HttpRouteStats] = {}

    def route(self, parent: tuple[str, str, int], kind: str, namespace: str, name: str,
              dst: str) -> HttpRouteStats:  # fmt: skip
        key = (*parent[:2], str(parent[2]), kind, namespace, name)
        stats = self.routes.get(key)
        if stats is None:
            stats = self.routes[key] = HttpRouteStats(labels(_PARENT_ROUTE, key), dst, name,
                                                      kind == "GRPCRoute")  # fmt: skip
        return stats

    def render(self) -> list[str]:
        if not self.routes:
            return []
        routes = sorted(self.routes.items())
        out: list[str] = []
        for proto in ("http", "grpc"):
            of_proto = [(k, r) for k, r in routes if r.grpc == (proto == "grpc")]
            if of_proto:
                out += self._families(proto, of_proto)
        out += self._legacy(routes)
        return out

    @staticmethod
    def _families(proto: str, routes: list[tuple[tuple[str, ...], HttpRouteStats]]) -> list[str]:
        out: list[str] = []
        status_label = "grpc_status" if proto == "grpc" else "http_status"
        name = f"outbound_{proto}_route_request_duration_seconds"
        out += family_header(name, "histogram", "Time from a route's request to its response.")
        for _key, r in routes:
            running = 0
            for bound, count in zip(_BOUNDS, r.buckets, strict=True):
                running += count
                out.append(f'{name}_bucket{{{r.labels},le="{number(bound)}"}} {running}')
            out.append(sample(f"{name}_sum", r.labels, r.seconds_total))
            out.append(sample(f"{name}_count", r.labels, running))
        name = f"outbound_{proto}_route_request_statuses_total"
        out += family_header(name, "counter", "Responses of a route's requests by status.")
        for _key, r in routes:
            for status, stats in sorted(r.by_status.items()):
                code = str(status) if status > 0 or (r.grpc and status == 0) else ""
                out.append(sample(name, f'{r.labels},{status_label}="{code}"', stats.count))
        name = f"outbound_{proto}_route_backend_requests_total"
        out += family_header(name, "counter", "Requests a route sent to each backend.")
        for _key, r in routes:
            for _b, backend in sorted(r.backends.items()):
                out.append(sample(name, backend.labels, backend.requests))
        for suffix, attr, help_text in (
            ("retry_requests_total", "retries", "Retries a route sent."),
            ("retry_successes_total", "retry_successes", "Requests that succeeded on a retry."),
            ("retry_limit_exceeded_total", "limit_exceeded", "Requests out of retry attempts."),
            ("retry_overflow_total", "overflow", "Retries the retry budget refused."),
        ):
            name = f"outbound_{proto}_route_{suffix}"
            out += family_header(name, "counter", help_text)
            for _key, r in routes:
                out.append(sample(name, r.labels, getattr(r, attr)))
        return out

    def _legacy(self, routes: list[tuple[tuple[str, ...], HttpRouteStats]]) -> list[str]:
        out = family_header("route_request_total", "counter", "Total count of route requests.")
        base = {key: labels(("direction", "dst", "rt_route"), ("outbound", r.dst, r.route_name))
                for key, r in routes}  # fmt: skip
        for key, r in routes:
            out.append(sample("route_request_total", base[key], r.requests))
        out += family_header("route_response_total", "counter", "Total count of route responses.")
        for key, r in routes:
            for status, stats in sorted(r.by_status.items()) if not r.grpc else ():
                cls = "failure" if status >= 500 or status == 0 else "success"
                extra = labels(("status_code", "classification"), (str(status or ""), cls))
                out.append(sample("route_response_total", f"{base[key]},{extra}", stats.count))
        name = "route_response_latency_ms"
        out += family_header(name, "histogram", "Route response latencies.")
        for key, r in routes:
            for status, stats in sorted(r.by_status.items()) if not r.grpc else ():
                lbl = f'{base[key]},status_code="{status or ""}"'
                running = 0
                for bound, count in zip(_MS_BOUNDS, stats.buckets, strict=True):
                    running += count
                    out.append(f'{name}_bucket{{{lbl},le="{number(bound)}"}} {running}')
                out.append(sample(f"{name}_sum", lbl, stats.total_ms))
                out.append(sample(f"{name}_count", lbl, stats.count))
        return out
