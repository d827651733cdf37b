"""`viz routes` queries and rows (pure): selectors, success by protocol, latency in ms."""

from __future__ import annotations

import pytest

from lacewing.errors import UsageError
from lacewing.viz.promql import Resource
from lacewing.viz.routes import RoutesRequest, parse_target, queries, render_routes, route_rows

ROUTE = {"parent_namespace": "shop", "parent_name": "web", "parent_port": "8080",
         "route_kind": "HTTPRoute", "route_namespace": "shop", "route_name": "web-all"}  # fmt: skip
GRPC = {**ROUTE, "parent_name": "rpc", "route_kind": "GRPCRoute", "route_name": "rpc-all"}


def test_selectors_follow_linkerds_meaning() -> None:
    svc = queries(RoutesRequest(Resource("service", "web"), "shop", "60000ms"))
    assert 'parent_namespace="shop", parent_name="web"' in svc["statuses"]
    assert svc["statuses"].startswith(
        'sum(increase({__name__=~"outbound_(http|grpc)_route_request_statuses_total"'
    )
    to = queries(RoutesRequest(Resource("deployment", "cli"), "shop", "1m",
                               Resource("service", "api"), "other"))  # fmt: skip
    assert (
        '{__name__=~"outbound_(http|grpc)_route_retry_requests_total", namespace="shop", '
        'deployment="cli", parent_namespace="other", parent_name="api"}[1m]' in to["retries"]
    )
    assert to["p99"].startswith("histogram_quantile(0.99, sum(rate(")


def test_rows_count_http_5xx_and_grpc_non_zero_as_failures() -> None:
    answers = {
        "statuses": [({**ROUTE, "http_status": "200"}, 90.0), ({**ROUTE, "http_status": "503"},
                     9.0), ({**ROUTE, "http_status": ""}, 1.0),
                     ({**GRPC, "grpc_status": "0"}, 30.0), ({**GRPC, "grpc_status": "14"}, 10.0)],
        "retries": [(ROUTE, 6.0)],
        "p50": [(ROUTE, 0.0025), (GRPC, float("nan"))],
        "p95": [(ROUTE, 0.009)],
        "p99": [(ROUTE, 0.0099)],
    }  # fmt: skip
    request = RoutesRequest(Resource("deployment", "cli"), "shop", "1m")
    prom = {q: answers[name] for name, q in queries(request).items()}
    rpc, web = route_rows(lambda q: prom[q], request, 60.0)
    assert (web.route, web.requests, web.success) == ("web-all", 100.0, 0.9)
    assert web.rps == pytest.approx(100 / 60) and web.actual_rps == pytest.approx(106 / 60)
    assert (web.latency_ms_p50, web.latency_ms_p95) == (2.5, 9.0)
    assert (rpc.route, rpc.requests, rpc.success, rpc.latency_ms_p50) == ("rpc-all", 40, 0.75, None)
    table = render_routes([rpc, web], "table").splitlines()
    assert table[0].split() == ["ROUTE", "SERVICE", "SUCCESS", "RPS", "LATENCY_P50",
                                "LATENCY_P95", "LATENCY_P99"]  # fmt: skip
    assert table[2].split() == ["web-all", "web", "90.00%", "1.67", "2.5ms", "9.0ms", "9.9ms"]
    assert table[1].split()[4:] == ["-", "-", "-"]


def test_bad_resources_are_one_line() -> None:
    with pytest.raises(UsageError, match="cannot show routes of 'ns/shop'"):
        parse_target("ns/shop", "RESOURCE")
    with pytest.raises(UsageError, match="names no resource"):
        parse_target("deploy", "RESOURCE")
    with pytest.raises(UsageError, match=r"routes of .deploy/web. \(--to\)"):
        parse_target("deploy/web", "--to")
