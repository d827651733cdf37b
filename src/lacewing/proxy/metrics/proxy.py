"""Request and TCP metrics with Linkerd's names and labels.

Label sets (as the Linkerd proxy sets them, minus the ones that need the control plane):
- HTTP: `request_total{direction, authority, target_addr, tls}`;
  `response_total{..., status_code, classification}` and the `response_latency_ms` histogram
  (Linkerd's buckets; time to first byte, as Linkerd: from the request's head to the
  response's first body byte, or to its end when it has none; gRPC: to the response head).
  `Exchange.first_byte` counts the response then.
- TCP: `tcp_open_total`, `tcp_close_total`, `tcp_open_connections`, `tcp_read_bytes_total`,
  `tcp_write_bytes_total` with `{direction, peer, target_addr, tls}`; `peer="src"` is the
  accepted connection, `peer="dst"` the one the proxy opened.
- `inbound_tcp_errors_total` / `outbound_tcp_errors_total{error}` count connections the proxy
  refused (no original destination, connection limit).
`tls` is a tuple of label pairs so that "no_identity" can carry its `no_tls_reason`.
gRPC responses (HTTP/2) also carry `grpc_status` and, under the name Linkerd's docs and older
dashboards use, `grpc_status_code` (the same number; empty when the stream ended without one)
and are classified by it: success only for grpc-status 0, as Linkerd does.
TCP closes carry `classification` and `errno` (see `TcpStats`), and each close's connection
lifetime goes into `tcp_connection_duration_ms` (buckets 1 ms .. 10^8 ms, decades).

Histogram buckets are stored per bucket (not cumulative) and cumulated when rendered; an
observation is one `bisect` and two additions.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from errno import errorcode
from typing import Any

from lacewing.proxy.metrics.text import family_header, labels, number, sample

__all__ = [
    "AUTHZ_FAMILIES",
    "LATENCY_BUCKETS_MS",
    "ProxyMetrics",
    "ResponseStats",
    "RouteStats",
    "TapPoint",
    "TcpStats",
]

LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
    1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
)  # fmt: skip

_BOUNDS = (*LATENCY_BUCKETS_MS, float("inf"))
# a connection's lifetime: decades from 1 ms to ~28 h
TCP_DURATION_BUCKETS_MS: tuple[float, ...] = tuple(10.0**i for i in range(9))
_TCP_BOUNDS = (*TCP_DURATION_BUCKETS_MS, float("inf"))
TlsLabels = tuple[tuple[str, str], ...]
TLS_DISABLED: TlsLabels = (("tls", "disabled"),)
TLS_PASSTHRU: TlsLabels = (("tls", "no_identity"), ("no_tls_reason", "passthru"))


class TcpStats:
    """One (direction, peer, target_addr, tls) key's connections. A connection notes
    `opened_at = stats.clock()` when it opens and calls `close(exc, opened_at)` once when it is
    lost: that counts `tcp_close_total{classification, errno}` and observes its lifetime in
    `tcp_connection_duration_ms` (a dict lookup and a few additions, once per connection)."""

    __slots__ = ("clock", "closed", "closes", "opened", "read_bytes", "write_bytes")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.opened = 0
        self.closed = 0
        self.read_bytes = 0
        self.write_bytes = 0
        # (classification, errno name or "") -> lifetimes of the connections closed so
        self.closes: dict[tuple[str, str], DurationStats] = {}

    def close(self, exc: BaseException | None, opened_at: float) -> None:
        """A connection counted here is gone: `exc` is what asyncio's `connection_lost` got
        (None: a clean close; an OSError carries the errno Linkerd labels it with)."""
        self.closed += 1
        if exc is None:
            key = _CLEAN
        else:
            code = getattr(exc, "errno", None)
            key = ("failure", errorcode.get(code, str(code)) if isinstance(code, int) else "")
        stats = self.closes.get(key)
        if stats is None:
            stats = self.closes[key] = DurationStats()
        ms = (self.clock() - opened_at) * 1000.0
        stats.buckets[bisect_left(TCP_DURATION_BUCKETS_MS, ms)] += 1
        stats.count += 1
        stats.total_ms += ms


class DurationStats:
    __slots__ = ("buckets", "count", "total_ms")

    def __init__(self) -> None:
        self.buckets = [0] * (len(TCP_DURATION_BUCKETS_MS) + 1)
        self.count = 0
        self.total_ms = 0.0


_CLEAN = ("success", "")


class ResponseStats:
    __slots__ = ("buckets", "count", "total_ms")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.count = 0
        self.total_ms = 0.0

    def observe(self, latency_ms: float) -> None:
        self.buckets[bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
        self.count += 1
        self.total_ms += latency_ms


class TapPoint:
    """The one switch tap needs on the data path: `hub` is `proxy.tap.hub.TapHub` while
    someone taps, else None (every `RouteStats` of a process shares one point)."""

    __slots__ = ("hub",)

    def __init__(self) -> None:
        self.hub: Any = None


_NO_TAP = TapPoint()  # for RouteStats made outside a ProxyMetrics (tests)


class RouteStats:
    """Counters for one (direction, authority, target_addr, tls) (`key`)."""

    __slots__ = ("by_status", "grpc", "key", "requests", "responses", "tap")

    def __init__(
        self, key: tuple[str, str, str, TlsLabels] = ("", "", "", ()), tap: TapPoint = _NO_TAP
    ) -> None:
        self.key, self.tap = key, tap
        self.requests = 0
        # (status_code, classification) -> stats; status 0 means "no response" (an error).
        self.responses: dict[tuple[int, str], ResponseStats] = {}
        self.by_status: dict[int, ResponseStats] = {}  # the same objects, keyed for speed
        # gRPC: (status_code, grpc_status or -1 for none) -> stats
        self.grpc: dict[tuple[int, int], ResponseStats] = {}

    def grpc_response(self, status: int, grpc_status: int | None, latency_ms: float) -> None:
        key = (status, -1 if grpc_status is None else grpc_status)
        stats = self.grpc.get(key)
        if stats is None:
            stats = self.grpc[key] = ResponseStats()
        stats.observe(latency_ms)

    def response(self, status: int, latency_ms: float) -> None:
        stats = self.by_status.get(status)
        if stats is None:
            key = (status, "failure" if status >= 500 or status == 0 else "success")
            stats = self.by_status[status] = self.responses[key] = ResponseStats()
        # most requests between sidecars take under a millisecond: skip the search for them
        stats.buckets[0 if latency_ms <= 1.0 else bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
        stats.count += 1
        stats.total_ms += latency_ms


_TCP_FAMILIES = (
    ("tcp_open_total", "counter", "Total count of opened connections.", "opened"),
    ("tcp_open_connections", "gauge", "Number of currently-open connections.", None),
    ("tcp_read_bytes_total", "counter", "Total count of bytes read from peers.", "read_bytes"),
    ("tcp_write_bytes_total", "counter", "Total count of bytes written to peers.", "write_bytes"),
)


AUTHZ_FAMILIES = {
    "inbound_http_authz_allow_total": "HTTP requests authorized by inbound policy.",
    "inbound_http_authz_deny_total": "HTTP requests denied by inbound policy.",
    "inbound_http_route_not_found_total": "HTTP requests that matched no route of their Server.",
    "inbound_tcp_authz_allow_total": "Connections authorized by inbound policy.",
    "inbound_tcp_authz_deny_total": "Connections denied by inbound policy.",
}


class ProxyMetrics:
    """Every request/TCP counter of one proxy process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # connections' lifetimes (TcpStats.close)
        self.tcp: dict[tuple[str, str, str, TlsLabels], TcpStats] = {}
        self.routes: dict[tuple[str, str, str, TlsLabels], RouteStats] = {}
        self.errors: dict[tuple[str, str], int] = {}
        # (family, target_addr, labels) -> count; families in AUTHZ_FAMILIES
        self.authz: dict[tuple[str, str, TlsLabels], int] = {}
        self.tap = TapPoint()  # proxy.tap's switch, shared by every RouteStats
        from lacewing.proxy.metrics.control import ControlMetrics  # (these import this module)
        from lacewing.proxy.metrics.routes import RouteMetrics

        self.http_routes = RouteMetrics()  # per-route families (proxy.routes)
        self.control = ControlMetrics(clock)  # the proxy's own control-plane clients

    def tcp_stats(self, direction: str, peer: str, target_addr: str, tls: TlsLabels) -> TcpStats:
        key = (direction, peer, target_addr, tls)
        stats = self.tcp.get(key)
        if stats is None:
            stats = self.tcp[key] = TcpStats(self.clock)
        return stats

    def route(self, direction: str, authority: str, target_addr: str, tls: TlsLabels) -> RouteStats:
        key = (direction, authority, target_addr, tls)
        stats = self.routes.get(key)
        if stats is None:
            stats = self.routes[key] = RouteStats(key, self.tap)
        return stats

    def authorized(self, family: str, target_addr: str, labels: TlsLabels) -> None:
        """Count one inbound authorization decision (`family` one of AUTHZ_FAMILIES)."""
        key = (family, target_addr, labels)
        self.authz[key] = self.authz.get(key, 0) + 1

    def error(self, direction: str, error: str) -> None:
        key = (direction, error)
        self.errors[key] = self.errors.get(key, 0) + 1

    def render(self) -> list[str]:
        out: list[str] = []
        routes = sorted(self.routes.items(), key=lambda kv: kv[0])
        out += family_header("request_total", "counter", "Total count of HTTP requests.")
        for key, route in routes:
            out.append(sample("request_total", _route_labels(key), route.requests))
        out += family_header("response_total", "counter", "Total count of HTTP responses.")
        for key, route in routes:
            base = _route_labels(key)
            for (status, cls), stats in sorted(route.responses.items()):
                extra = labels(("status_code", "classification"), (_status(status), cls))
                out.append(sample("response_total", f"{base},{extra}", stats.count))
            for (status, code), stats in sorted(route.grpc.items()):
                grpc = _grpc(code)
                extra = labels(_GRPC_LABELS, (_status(status), _grpc_class(code), grpc, grpc))
                out.append(sample("response_total", f"{base},{extra}", stats.count))
        out += family_header(
            "response_latency_ms", "histogram", "Elapsed times between a request's headers "
            "being received and its response's first body byte (or its end)."
        )  # fmt: skip
        for key, route in routes:
            base = _route_labels(key)
            series = [(f'{base},status_code="{_status(status)}"', stats)
                      for (status, _cls), stats in sorted(route.responses.items())]  # fmt: skip
            series += [(f'{base},status_code="{_status(s)}",grpc_status="{_grpc(code)}",'
                        f'grpc_status_code="{_grpc(code)}"', stats)
                       for (s, code), stats in sorted(route.grpc.items())]  # fmt: skip
            for lbl, stats in series:
                running = 0
                for bound, count in zip(_BOUNDS, stats.buckets, strict=True):
                    running += count
                    out.append(
                        f'response_latency_ms_bucket{{{lbl},le="{number(bound)}"}} {running}'
                    )
                out.append(sample("response_latency_ms_sum", lbl, stats.total_ms))
                out.append(sample("response_latency_ms_count", lbl, stats.count))
        tcp = sorted(self.tcp.items(), key=lambda kv: kv[0])
        for name, kind, help_text, attr in _TCP_FAMILIES:
            out += family_header(name, kind, help_text)
            for key, tstats in tcp:
                value = tstats.opened - tstats.closed if attr is None else getattr(tstats, attr)
                out.append(sample(name, _tcp_labels(key), value))
        out += _tcp_closes(tcp)
        for family, help_text in AUTHZ_FAMILIES.items():  # only with inbound policy on
            counted = sorted(kv for kv in self.authz.items() if kv[0][0] == family)
            if counted:
                out += family_header(family, "counter", help_text)
            for (_f, target_addr, decided), count in counted:
                names = ("target_addr", *(k for k, _ in decided))
                values = (target_addr, *(v for _, v in decided))
                out.append(sample(family, labels(names, values), count))
        for direction in ("inbound", "outbound"):
            name = f"{direction}_tcp_errors_total"
            out += family_header(name, "counter", "Connections the proxy refused, by reason.")
            for (d, error), count in sorted(self.errors.items()):
                if d == direction:
                    out.append(sample(name, labels(("error",), (error,)), count))
        out += self.http_routes.render()
        out += self.control.render()
        return out


def _tcp_closes(tcp: list[tuple[tuple[str, str, str, TlsLabels], TcpStats]]) -> list[str]:
    """`tcp_close_total` and `tcp_connection_duration_ms`, by classification and errno."""
    closes = [
        (f'{_tcp_labels(key)},classification="{cls}",errno="{errno}"', d)
        for key, tstats in tcp
        for (cls, errno), d in sorted(tstats.closes.items())
    ]
    out = family_header("tcp_close_total", "counter", "Total count of closed connections.")
    out += [sample("tcp_close_total", lbl, d.count) for lbl, d in closes]
    name = "tcp_connection_duration_ms"
    out += family_header(name, "histogram", "Connection lifetimes.")
    for lbl, d in closes:
        running = 0
        for bound, count in zip(_TCP_BOUNDS, d.buckets, strict=True):
            running += count
            out.append(f'{name}_bucket{{{lbl},le="{number(bound)}"}} {running}')
        out.append(sample(f"{name}_sum", lbl, d.total_ms))
        out.append(sample(f"{name}_count", lbl, d.count))
    return out


_GRPC_LABELS = ("status_code", "classification", "grpc_status", "grpc_status_code")


def _status(status: int) -> str:
    return str(status) if status else ""


def _grpc(code: int) -> str:
    return str(code) if code >= 0 else ""


def _grpc_class(code: int) -> str:
    return "success" if code == 0 else "failure"


def _route_labels(key: tuple[str, str, str, TlsLabels]) -> str:
    direction, authority, target_addr, tls = key
    names = ("direction", "authority", "target_addr", *(k for k, _ in tls))
    return labels(names, (direction, authority, target_addr, *(v for _, v in tls)))


def _tcp_labels(key: tuple[str, str, str, TlsLabels]) -> str:
    direction, peer, target_addr, tls = key
    names = ("direction", "peer", "target_addr", *(k for k, _ in tls))
    return labels(names, (direction, peer, target_addr, *(v for _, v in tls)))
