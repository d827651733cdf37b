"""One `viz stat` request against a Prometheus, as rows: shared by the CLI and the dashboard.

    rows = stat_rows(prom, request, window_seconds, inventory)

sends every PromQL text of `lacewing.viz.promql.build_queries(request)` (requests, the three
latency quantiles, and for inbound views TCP connections and bytes), all evaluated at the same
instant `at` when given, and makes `lacewing.viz.summary` rows of the answers. For an edge
view (`--to` / `--from`) only the resources with traffic on that edge are kept, as Linkerd
shows them. `row_dict` is a row as the JSON objects of `viz stat -o json` (Linkerd's keys).

`stat_history(prom, request, window_seconds, start, end, step)` sends the same requests and
latency queries as range queries and makes the rows of each instant of the range, as
`stat_rows` would have made them then: the dashboard's charts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lacewing.viz.prometheus import Prometheus
from lacewing.viz.promql import Query, StatRequest, build_queries
from lacewing.viz.summary import InventoryItem, Series, StatRow, summarize

__all__ = ["query_texts", "row_dict", "stat_history", "stat_rows"]


def query_texts(query: Query) -> list[str]:
    texts = [query.requests, *query.latency.values()]
    return texts + [t for t in (query.tcp, query.read_bytes, query.write_bytes) if t]


def stat_rows(
    prom: Prometheus,
    request: StatRequest,
    window: float,
    inventory: Sequence[InventoryItem] | None,
    at: float | None = None,
) -> list[StatRow]:
    query = build_queries(request)
    results: dict[str, list[Series]] = {text: prom.query(text, at) for text in query_texts(query)}
    if request.to is not None or request.source is not None:
        seen = {
            (labels.get(query.group_by[0], ""), labels.get(query.group_by[-1], ""))
            for labels, value in results[query.requests]
            if value > 0
        }
        inventory = [i for i in inventory or () if (i.namespace, i.name) in seen]
    return summarize(
        query, request.resource.kind, results, window, inventory, only=request.resource.name
    )


def stat_history(
    prom: Prometheus,
    request: StatRequest,
    window: float,
    start: float,
    end: float,
    step: float,
) -> list[tuple[float, list[StatRow]]]:
    """(instant, rows with traffic then) for every instant of the range with an answer."""
    query = build_queries(request)
    texts = [query.requests, *query.latency.values()]
    by_time: dict[float, dict[str, list[Series]]] = {}
    for text in texts:
        for labels, points in prom.query_range(text, start, end, step):
            for at, value in points:
                by_time.setdefault(at, {}).setdefault(text, []).append((labels, value))
    kind = request.resource.kind
    return [
        (at, summarize(query, kind, results, window, None, only=request.resource.name))
        for at, results in sorted(by_time.items())
    ]


def row_dict(r: StatRow) -> dict[str, Any]:
    return {
        "namespace": r.namespace,
        "kind": r.kind,
        "name": r.name,
        "meshed": r.meshed,
        "requests": r.requests,
        "success": r.success_rate,
        "rps": r.rps,
        "latency_ms_p50": r.p50,
        "latency_ms_p95": r.p95,
        "latency_ms_p99": r.p99,
        "tcp_open_connections": r.tcp_conn,
        "tcp_read_bytes_rate": r.read_rate,
        "tcp_write_bytes_rate": r.write_rate,
        "tls": r.tls_share,
    }
