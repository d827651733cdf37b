"""The route rows: what a route table costs the HTTP/1 pair (issue 12's benchmark row).

Routes reach a proxy only from the destination controller, so each row here starts a
`lacewing controller destination --source local` on loopback (pinned to the load core, as the
identity controller of the mTLS row is) fed by two files this module writes: a registry with
one Service `web` in namespace `bench` whose cluster address is the server-side proxy's
listener (`127.0.0.1:<inbound port>`, one ready endpoint at the same address), and
`routes.json`, the HTTPRoutes attached to it. The client-side proxy keeps its fixed
destination (that same address) and asks the controller about it; once the routes have
arrived, every request takes the route layer (the table's match, the rule's backend, a pick
from the backend's balancer), the path a meshed request with routes takes.

    lacewing-routes0      no route: the Service and its endpoint from the controller only
    lacewing-route1       one route, `PathPrefix /` to web
    lacewing-routes100    100 routes, `PathPrefix /r000` .. `/r099`, each to web; the load
                          asks for `/r099/x`, the last of them (newest, last by name)
    lacewing-routes100q   100 routes on one path, `PathPrefix /q` with a query match
                          `tenant=t000` .. `t099`; the load asks for `/q?tenant=t099`: the
                          table's worst case (every entry is in the same path segment, so a
                          request walks all 100 until the last matches)

A row is ready when a request through the pair has been answered 200 and the client-side
proxy's metrics count it under the route the load is meant to take (`route_name`; the
no-route row: under none), so no measured request goes another way while the routes are on
their way. (The client-side proxy's fixed destination is resolved through the controller like
an original destination: `LACEWING_PROXY_OUTBOUND_FIXED_DST` with a destination address.)

`TARGETS`: the issue's row, "the HTTP/1 pair with 100 routes configured (the request matching
the last) costs at most 10% of the requests/s of the pair with no routes", is the
16-connection requests/s of `lacewing-routes100` against the plain `lacewing` pair of the same
run (which has no destination at all: the discovery and balancer the routes bring are part of
the cost); the same ratio against the discovered pair with no routes (the route layer alone)
and one route (the table's size alone), and the worst case, are reported beside it.
`render(run)` returns those lines for the report.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any

from bench.procs import BenchError, Child, Supervisor, free_port
from bench.report import Run, Target, Verdict
from bench.topology import Deployed, Env, RowSpec, _lacewing, _lacewing_missing

__all__ = ["ROWS", "TARGETS", "render"]

NAMESPACE = "bench"
ROUTES = 100


def _route(name: str, match: dict[str, Any], port: int, created: str) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": NAMESPACE, "creationTimestamp": created},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "web",
                                     "port": port}],
                     "rules": [{"matches": [match],
                                "backendRefs": [{"name": "web", "port": port}]}]}}  # fmt: skip


def _created(i: int) -> str:
    return f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z"  # one second apart: r099 the newest


def no_routes(port: int) -> tuple[list[dict[str, Any]], str, str | None]:
    return [], "/r099/x", None


def one_route(port: int) -> tuple[list[dict[str, Any]], str, str | None]:
    """(the routes, the path the load asks for, the route it must take)."""
    routes = [_route("all", {"path": {"type": "PathPrefix", "value": "/"}}, port, _created(0))]
    return routes, "/r099/x", "all"


def prefix_routes(port: int) -> tuple[list[dict[str, Any]], str, str | None]:
    routes = [_route(f"r{i:03d}", {"path": {"type": "PathPrefix", "value": f"/r{i:03d}"}},
                     port, _created(i)) for i in range(ROUTES)]  # fmt: skip
    return routes, f"/r{ROUTES - 1:03d}/x", f"r{ROUTES - 1:03d}"


def query_routes(port: int) -> tuple[list[dict[str, Any]], str, str | None]:
    routes = [_route(f"q{i:03d}", {"path": {"type": "PathPrefix", "value": "/q"},
                                   "queryParams": [{"name": "tenant", "value": f"t{i:03d}"}]},
                     port, _created(i)) for i in range(ROUTES)]  # fmt: skip
    return routes, f"/q?tenant=t{ROUTES - 1:03d}", f"q{ROUTES - 1:03d}"


def _registry(port: int) -> dict[str, Any]:
    return {"cluster": "bench", "revision": 1,
            "services": [{"name": "web", "namespace": NAMESPACE, "clusterIP": "127.0.0.1",
                          "ports": [{"name": "http", "port": port, "targetPort": port,
                                     "opaque": False}],
                          "selector": {"app": "web"}}],
            "pods": [{"name": "web-0", "namespace": NAMESPACE, "ip": "127.0.0.1",
                      "labels": {"app": "web"}, "serviceAccount": "web", "ready": True,
                      "meshed": False, "workload": {"kind": "Deployment",
                                                    "name": "web"}}]}  # fmt: skip


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def _wait_routed(child: Child, outbound: int, admin: int, path: str, route: str | None) -> None:
    """Until a request through the pair is answered 200 and counted under `route` (None:
    under no route), at most 15 s."""
    deadline, last = time.monotonic() + 15.0, "no answer"
    while time.monotonic() < deadline:
        child.check_alive()
        try:
            status, _ = _get(outbound, path)
            _, metrics = _get(admin, "/metrics")
        except OSError as exc:
            last = str(exc)
        else:
            counted = [line for line in metrics.splitlines()
                       if line.startswith("outbound_http_route_backend_requests_total{")
                       and f'route_name="{route}"' in line]  # fmt: skip
            if status == 200 and (
                bool(counted) if route is not None else "route_name=" not in metrics
            ):
                return
            last = f"status {status}, {len(counted)} series of route {route}"
        time.sleep(0.05)
    raise BenchError(f"{child.name}: requests never took route {route} ({last})",
                     hint=f"see {child.log}")  # fmt: skip


def _proxy(sup: Supervisor, env: Env, name: str, side: str, listen: int, upstream: int,
           extra: dict[str, str]) -> tuple[Child, int]:  # fmt: skip
    """One `lacewing proxy` as `topology` starts them, returning its admin port too."""
    admin = free_port()
    ports = {"INBOUND": free_port(), "OUTBOUND": free_port(), side: listen}
    variables = {
        "LACEWING_PROXY_INBOUND_LISTEN_ADDR": f"127.0.0.1:{ports['INBOUND']}",
        "LACEWING_PROXY_OUTBOUND_LISTEN_ADDR": f"127.0.0.1:{ports['OUTBOUND']}",
        "LACEWING_PROXY_ADMIN_LISTEN_ADDR": f"127.0.0.1:{admin}",
        f"LACEWING_PROXY_{side}_FIXED_DST": f"127.0.0.1:{upstream}",
        **extra,
    }
    child = sup.start(name, [_lacewing(), "proxy"], cpu=env.proxy_cpu, env=variables)
    sup.wait_http_ok(child, admin, "/ready")
    sup.wait_tcp(child, listen)
    return child, admin


Routes = Callable[[int], tuple[list[dict[str, Any]], str, str | None]]


def _starter(key: str, routes_of: Routes) -> Callable[[Supervisor, Env], Deployed]:
    def start(sup: Supervisor, env: Env) -> Deployed:
        inbound_port, outbound_port, dest_port = free_port(), free_port(), free_port()
        files = env.workdir / key
        files.mkdir()
        routes, path, route = routes_of(inbound_port)
        registry = files / "registry.json"
        registry.write_text(json.dumps(_registry(inbound_port)))
        (files / "routes.json").write_text(json.dumps(routes))
        argv = [
            _lacewing(),
            "controller",
            "destination",
            "--source",
            "local",
            "--registry-file",
            str(registry),
            "--listen-addr",
            f"127.0.0.1:{dest_port}",
        ]
        controller = sup.start(f"{key}-destination", argv, cpu=env.load_cpu)  # fmt: skip
        sup.wait_tcp(controller, dest_port, timeout_s=20)
        inbound, _ = _proxy(sup, env, f"{key}-inbound", "INBOUND", inbound_port,
                            env.backend_port, {})  # fmt: skip
        outbound, admin = _proxy(
            sup, env, f"{key}-outbound", "OUTBOUND", outbound_port, inbound_port,
            {"LACEWING_PROXY_DESTINATION_ADDR": f"127.0.0.1:{dest_port}"},
        )  # fmt: skip
        _wait_routed(outbound, outbound_port, admin, path, route)
        return Deployed(f"http://127.0.0.1:{outbound_port}{path}", (outbound, inbound))

    return start


ROWS: tuple[RowSpec, ...] = (
    RowSpec("lacewing-routes0", "lacewing pair, HTTP, discovered, no route", "plain",
            _lacewing_missing, _starter("lacewing-routes0", no_routes)),
    RowSpec("lacewing-route1", "lacewing pair, HTTP, 1 route", "plain", _lacewing_missing,
            _starter("lacewing-route1", one_route)),
    RowSpec("lacewing-routes100", "lacewing pair, HTTP, 100 routes (last matches)", "plain",
            _lacewing_missing, _starter("lacewing-routes100", prefix_routes)),
    RowSpec("lacewing-routes100q", "lacewing pair, HTTP, 100 routes on one path (worst case)",
            "plain", _lacewing_missing, _starter("lacewing-routes100q", query_routes)),
)  # fmt: skip


def _rps_ratio(key: str, base: str, at_least: float | None) -> Callable[[Run], Verdict]:
    """16-connection requests/s of row `key` over row `base` (None: reported, no target)."""

    def check(run: Run) -> Verdict:
        row, ref = run.rows.get(key), run.rows.get(base)
        for name, r in ((key, row), (base, ref)):
            if r is None or not r.measured or r.c16 is None:
                reason = r.error if r is not None and r.error else "not run"
                return Verdict("NOT MEASURED", f"{name} row: {reason}")
        assert row is not None and ref is not None and row.c16 and ref.c16
        ratio = row.c16.rps / ref.c16.rps
        figure = f"{ratio:.2f}x ({row.c16.rps:,.0f} vs {ref.c16.rps:,.0f} req/s"
        pairs = zip(row.c16_rounds, ref.c16_rounds, strict=False)
        rounds = " / ".join(f"{a.rps / b.rps:.2f}" for a, b in pairs if b.rps > 0)
        figure += f"; rounds {rounds})" if len(row.c16_rounds) > 1 else ")"
        if row.c16.errors:
            return Verdict("MISS", f"{figure}, but {row.c16.errors:,} requests failed")
        if at_least is None:
            return Verdict("INFO", figure)
        return Verdict("PASS" if ratio >= at_least else "MISS", figure)

    return check


TARGETS: tuple[Target, ...] = (
    Target("the HTTP/1 pair with 100 routes configured (the request matching the last) costs at "
           "most 10% of the requests/s of the pair with no routes (the `lacewing` pair: no "
           "destination, no balancer)",
           _rps_ratio("lacewing-routes100", "lacewing", 0.90)),
    Target("the same, against the pair with a destination and no routes (the route layer alone)",
           _rps_ratio("lacewing-routes100", "lacewing-routes0", 0.90)),
    Target("the same, against the pair with 1 route (the table's size alone)",
           _rps_ratio("lacewing-routes100", "lacewing-route1", 0.90)),
    Target("100 routes on one path (query matches), the last matching, against no routes",
           _rps_ratio("lacewing-routes100q", "lacewing", None)),
)  # fmt: skip


def render(run: Run) -> list[str]:
    lines = ["## Targets (issue 12, route table cost, this run)", "",
             "| target | result | figure |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {t.text} | {v.status} | {v.figure} |" for t in TARGETS for v in [t.check(run)]]
    lines += [
        "",
        "Route rows: the client-side proxy gets its routes from a `lacewing controller "
        "destination` on the load core; 100 routes are `PathPrefix /r000`..`/r099` (the "
        "load asks for `/r099/x`), the worst case 100 query matches under one `PathPrefix "
        "/q` (`/q?tenant=t099`). The pairs with no routes are the `lacewing` row (no "
        "destination) and `lacewing-routes0` (a destination, no routes).",
        "",
    ]
    return lines
