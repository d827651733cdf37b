"""viz stat's PromQL: what each request selects and groups by, and the rows made of answers."""

from __future__ import annotations

import json
import math

import pytest

from lacewing.errors import ProtocolError, UsageError
from lacewing.viz.prometheus import parse_answer, query_path
from lacewing.viz.promql import Resource, StatRequest, build_queries, parse_resource
from lacewing.viz.statview import render
from lacewing.viz.summary import InventoryItem, summarize


def test_deploy_in_a_namespace_is_linkerds_inbound_query() -> None:
    q = build_queries(StatRequest(Resource("deployment"), "shop", "60000ms"))
    sel = '{direction="inbound", namespace="shop"}'
    assert q.requests == (
        f"sum(increase(response_total{sel}[60000ms])) "
        "by (namespace, deployment, classification, tls)"
    )
    assert q.latency[0.95] == (
        f"histogram_quantile(0.95, sum(irate(response_latency_ms_bucket{sel}[60000ms])) "
        "by (le, namespace, deployment))"
    )
    assert q.tcp == (
        'sum(tcp_open_connections{direction="inbound", namespace="shop", peer="src"}) '
        "by (namespace, deployment)"
    )
    assert q.group_by == ("namespace", "deployment")


def test_selectors_of_to_from_svc_authority_and_ns() -> None:
    to = build_queries(
        StatRequest(Resource("deployment"), "shop", "1m", to=Resource("service", "web"))
    )
    assert '{direction="outbound", namespace="shop", dst_namespace="shop", dst_service="web"}' in (
        to.requests
    )
    assert to.group_by == ("namespace", "deployment") and to.tcp is None
    src = build_queries(
        StatRequest(
            Resource("deployment", "web"), "shop", "1m",
            source=Resource("deployment", "bot"), from_namespace="load",
        )
    )  # fmt: skip
    assert (
        '{direction="outbound", namespace="load", deployment="bot", dst_namespace="shop", '
        'dst_deployment="web"}' in src.requests
    )
    assert src.group_by == ("dst_namespace", "dst_deployment")
    svc = build_queries(StatRequest(Resource("service"), None, "1m"))
    assert '{direction="outbound"}' in svc.requests
    assert svc.group_by == ("dst_namespace", "dst_service")
    au = build_queries(StatRequest(Resource("authority"), "shop", "1m"))
    assert au.group_by == ("namespace", "authority") and au.tcp is None
    ns = build_queries(StatRequest(Resource("namespace"), "ignored", "1m"))
    assert '{direction="inbound"}' in ns.requests and ns.group_by == ("namespace",)


def test_label_values_are_escaped() -> None:
    q = build_queries(StatRequest(Resource("pod", 'a"b\\'), "x", "1m"))
    assert 'pod="a\\"b\\\\"' in q.requests


def test_parse_resource() -> None:
    assert parse_resource("deploy/web") == Resource("deployment", "web")
    assert parse_resource("PO") == Resource("pod")
    assert parse_resource("au") == Resource("authority")
    with pytest.raises(UsageError, match="unknown kind 'jobs'"):
        parse_resource("jobs")
    with pytest.raises(UsageError, match="names no resource"):
        parse_resource("deploy/")


def _vector(*items: tuple[dict[str, str], str]) -> bytes:
    result = [{"metric": m, "value": [1.0, v]} for m, v in items]
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": result}}
    ).encode()


def test_parse_answer_and_errors() -> None:
    series = parse_answer(_vector(({"a": "1"}, "2.5"), ({}, "NaN")))
    assert series[0] == ({"a": "1"}, 2.5)
    assert math.isnan(series[1][1])
    with pytest.raises(ProtocolError, match="refused the query: parse error"):
        parse_answer(b'{"status": "error", "errorType": "bad_data", "error": "parse error"}')
    with pytest.raises(ProtocolError, match="not JSON"):
        parse_answer(b"<html>")
    assert query_path('up{a="b"}') == "/api/v1/query?query=up%7Ba%3D%22b%22%7D"


def test_rows_from_answers() -> None:
    q = build_queries(StatRequest(Resource("deployment"), "shop", "1m"))
    web = {"namespace": "shop", "deployment": "web"}
    results = {
        q.requests: [
            ({**web, "classification": "success", "tls": "true"}, 90.0),
            ({**web, "classification": "failure", "tls": "true"}, 6.0),
            ({**web, "classification": "success", "tls": "disabled"}, 4.0),
            ({"namespace": "shop", "classification": "success"}, 7.0),  # no deployment label
        ],
        q.latency[0.5]: [(web, 2.5)],
        q.latency[0.95]: [(web, 9.0)],
        q.latency[0.99]: [(web, float("nan"))],
        q.tcp or "": [(web, 3.0)],
    }
    inventory = [InventoryItem("shop", "web", 2, 2), InventoryItem("shop", "idle", 0, 1)]
    rows = summarize(q, "deployment", results, 60.0, inventory)
    assert [r.name for r in rows] == ["idle", "web"]
    idle, row = rows
    assert (row.requests, row.success_rate, row.tls_share) == (100.0, 0.94, 0.96)
    assert row.rps == pytest.approx(100 / 60)
    assert (row.p50, row.p95, row.p99, row.tcp_conn, row.meshed) == (2.5, 9.0, None, 3, "2/2")
    assert idle.success_rate is None and idle.meshed == "0/1" and idle.tcp_conn == 0
    table = render(rows, "table")
    assert table.splitlines() == [
        "NAME   MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN",
        "idle      0/1         -   0.0rps             -             -             -          0",
        "web       2/2    94.00%   1.7rps         2.5ms         9.0ms             -          3",
    ]
    wide = render(rows, "wide", namespaces=True).splitlines()
    assert wide[0].split()[0] == "NAMESPACE" and wide[0].split()[-1] == "WRITE_BYTES/SEC"
    data = json.loads(render(rows, "json"))
    assert data[1]["success"] == 0.94 and data[1]["latency_ms_p99"] is None
    assert data[1]["requests"] == 100.0 and data[1]["meshed"] == "2/2"
