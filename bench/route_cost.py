"""What the client-side proxy's Python does per HTTP/1 request, route rows included, in process.

    python bench/route_cost.py                  # every case, 200,000 requests each
    python bench/route_cost.py --cases static,routes100 --requests 50000 --profile

The route rows of `bench/routes.py` measure a whole pair through the kernel, with a load
generator, on a shared machine: their CPU per request moves with everything else that runs.
This drives the outbound `Http1Server` of the real proxy stack with fake transports instead:
one keep-alive client connection sends the load's request, and one pooled `UpstreamConn`
answers it with an nginx-like response, so what is timed is only the proxy's own Python per
request (parsing, the pick, the route layer, metrics, the exchange ending), no socket calls,
no event loop wake-ups. The cases are the route rows' client side:

    static        no destination: one cached pick (the `lacewing` pair's client side)
    discovered    the destination knows Service `web` and its one endpoint, no routes
    route1        one HTTPRoute on `web`, PathPrefix / to web
    routes100     100 HTTPRoutes PathPrefix /r000../r099, the request asks for /r099/x
    routes100q    100 routes on PathPrefix /q with a query match, /q?tenant=t099

The destination is a stub `DestinationClient` whose `Resolution`s are filled the way its
stream fills them (endpoints, then the route table); nothing connects anywhere. The figures
are microseconds per request of this process's CPU time (`time.process_time`), best of
`--repeat` rounds: compare cases of one run, not runs on different machines. `--profile`
prints the top functions of each case under cProfile (which inflates every call).
`--no-memo` turns off the compiled tables' memo of recent (method, target) pairs
(`proxy.routes.router`), so the table is matched per request, as a load that never asks for
the same target twice would have it.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: bench/profile.py must not hide the stdlib's
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import cProfile
import io
import pstats
import time
from collections.abc import Callable
from typing import Any

from bench.routes import no_routes, one_route, prefix_routes, query_routes
from lacewing.core.discovery import Endpoint as Discovered
from lacewing.core.discovery import EndpointSet
from lacewing.core.routes import parse_route
from lacewing.proxy.config import Addr, load
from lacewing.proxy.discovery.client import DestinationClient, Resolution
from lacewing.proxy.discovery.outbound import OutboundDiscovery
from lacewing.proxy.http1.server import Http1Server
from lacewing.proxy.http1.upstream import UpstreamConn
from lacewing.proxy.metrics import ProxyMetrics
from lacewing.proxy.metrics.proxy import TLS_DISABLED
from lacewing.proxy.routes import Router
from lacewing.proxy.side import Side
from lacewing.proxy.transport import PlainConnector

PORT = 4143  # the server-side proxy's listener in the route rows: the Service's address
NGINX = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 01:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
)

Routes = Callable[[int], tuple[list[dict[str, Any]], str, str | None]]
CASES: dict[str, Routes | None] = {
    "static": None,
    "discovered": no_routes,
    "route1": one_route,
    "routes100": prefix_routes,
    "routes100q": query_routes,
}


class _Transport:
    """Enough of an asyncio transport: what is written is counted, then dropped."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += 1

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise AssertionError("the proxy closed a keep-alive connection")

    def abort(self) -> None:
        raise AssertionError("the proxy aborted a keep-alive connection")

    def set_protocol(self, protocol: object) -> None: ...


class _Stub(DestinationClient):
    """A destination client with the answers already in: no stream, no task."""

    def __init__(self, answers: dict[str, Resolution]) -> None:
        super().__init__("127.0.0.1", 1)
        self.answers = answers

    def resolve(self, authority: str) -> Resolution:
        found = self.answers[authority]
        found.last_used = self.clock()
        return found


def _answered(authority: str, routes: list[dict[str, Any]]) -> Resolution:
    resolution = Resolution(authority, time.monotonic())
    pod = Discovered("127.0.0.1", PORT, labels={"namespace": "bench", "service": "web",
                                                "deployment": "web", "pod": "web-0"})  # fmt: skip
    resolution._set(EndpointSet([pod]), True)
    if routes:
        resolution._set_routes([parse_route(route) for route in routes])
    return resolution


def build(case: str) -> tuple[Http1Server, UpstreamConn, bytes]:
    """The outbound side of `case`, one accepted client connection and its pooled upstream."""
    config = load({})
    metrics = ProxyMetrics()
    routes_of = CASES[case]
    dst = Addr("127.0.0.1", PORT)
    discovery = None
    path = "/r099/x"
    if routes_of is not None:
        routes, path, _route = routes_of(PORT)
        authority = f"127.0.0.1:{PORT}"
        backend = f"web.bench.svc.cluster.local:{PORT}"
        discovery = OutboundDiscovery(_Stub({authority: _answered(authority, routes),
                                             backend: _answered(backend, [])}))  # fmt: skip
    side = Side("outbound", config, metrics, PlainConnector(1.0), resolve=lambda d: d,
                fixed_dst=dst, discovery=discovery)  # fmt: skip
    if discovery is not None:
        side.router = Router(discovery, metrics.http_routes)
    stats = metrics.tcp_stats("outbound", "src", str(dst), TLS_DISABLED)
    server = Http1Server(side, dst, stats)
    server.adopt(_Transport(), b"")  # type: ignore[arg-type]
    up_stats = metrics.tcp_stats("outbound", "dst", str(dst), TLS_DISABLED)
    upstream = UpstreamConn(dst, up_stats, side.pool)
    upstream.connection_made(_Transport())  # type: ignore[arg-type]
    side.pool.bucket(dst).append(upstream)
    request = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (path.encode(), PORT)
    return server, upstream, request


def drive(server: Http1Server, upstream: UpstreamConn, request: bytes, n: int) -> None:
    """`n` request/response exchanges on the one connection."""
    feed_down, feed_up = server.data_received, upstream.data_received
    for _ in range(n):
        feed_down(request)
        feed_up(NGINX)
    assert server.active is None and not server.closed


def _forget_memo(server: Http1Server) -> None:
    router = server.side.router
    held = server._route_target
    if router is None or held is None:
        return
    compiled = router._compiled(held.dst, held._dest.resolution)
    if compiled.parent is not None:
        compiled.parent.memo = None  # (the table then matches every request)


def measure(case: str, requests: int, repeat: int, memo: bool = True) -> float:
    server, upstream, request = build(case)
    drive(server, upstream, request, 2000)  # warm: caches, the route table compiled
    if not memo:
        _forget_memo(server)
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        drive(server, upstream, request, requests)
        best = min(best, (time.process_time() - start) / requests * 1e6)
    return best


def profile(case: str, requests: int, memo: bool = True, top: int = 18) -> str:
    server, upstream, request = build(case)
    drive(server, upstream, request, 2000)
    if not memo:
        _forget_memo(server)
    prof = cProfile.Profile()
    prof.runcall(drive, server, upstream, request, requests)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-memo", action="store_true")
    options = parser.parse_args(argv)
    cases = [c.strip() for c in options.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        print(f"unknown case {unknown[0]!r} (cases: {', '.join(CASES)})", file=sys.stderr)
        return 2

    async def run() -> None:  # (timers need a running loop)
        base = None
        print("| case | us/request | over static |\n|---|---|---|")
        for case in cases:
            cost = measure(case, options.requests, options.repeat, not options.no_memo)
            base = cost if base is None and case == "static" else base
            over = f"+{cost - base:.2f}" if base is not None else "-"
            print(f"| {case} | {cost:.2f} | {over} |", flush=True)
        if options.profile:
            for case in cases:
                text = profile(case, min(options.requests, 50_000), not options.no_memo)
                print(f"\n## {case}\n{text}")

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
