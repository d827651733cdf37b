"""Prometheus answers to `viz stat` rows (pure).

`summarize` takes the vectors the queries of `lacewing.viz.promql.build_queries` returned and
the inventory (the resources that exist, with their meshed/total pod counts, when the caller
knows them) and makes one `StatRow` per resource, keyed by the query's group-by labels:

    requests    sum over classification and tls of the increase in the window
    successes   the part with classification="success"; SUCCESS = successes / requests
    RPS         requests / window seconds (Linkerd's figure: the window's mean)
    TLS         the part with tls="true"
    P50..P99    histogram_quantile's answer (NaN, when nothing was observed lately, is None)
    TCP_CONN    open inbound connections now; READ/WRITE bytes per second over the window

A resource in the inventory without traffic is a row of dashes; traffic for a resource not in
the inventory (a pod gone since) is still shown, with MESHED unknown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lacewing.viz.promql import Query

__all__ = ["InventoryItem", "Series", "StatRow", "summarize"]

Series = tuple[Mapping[str, str], float]


@dataclass(frozen=True)
class InventoryItem:
    namespace: str
    name: str
    meshed: int
    total: int


@dataclass(frozen=True)
class StatRow:
    namespace: str
    name: str
    kind: str
    meshed: str | None  # "2/2", or None when unknown
    requests: float
    successes: float
    tls_requests: float
    window: float
    p50: float | None
    p95: float | None
    p99: float | None
    tcp_conn: int | None
    read_bytes: float | None
    write_bytes: float | None

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.requests if self.requests > 0 else None

    @property
    def rps(self) -> float:
        return self.requests / self.window if self.window > 0 else 0.0

    @property
    def tls_share(self) -> float | None:
        return self.tls_requests / self.requests if self.requests > 0 else None

    @property
    def read_rate(self) -> float | None:
        return None if self.read_bytes is None else self.read_bytes / self.window

    @property
    def write_rate(self) -> float | None:
        return None if self.write_bytes is None else self.write_bytes / self.window


def _key(labels: Mapping[str, str], group_by: tuple[str, ...]) -> tuple[str, str] | None:
    values = [labels.get(name, "") for name in group_by]
    if not all(values):
        return None  # series without the label (e.g. traffic to a pod outside the mesh)
    return (values[0], values[-1])


def _number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def _by_key(series: Iterable[Series], group_by: tuple[str, ...]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for labels, value in series:
        key = _key(labels, group_by)
        if key is not None and _number(value) is not None:
            out[key] = out.get(key, 0.0) + value
    return out


def summarize(
    query: Query,
    kind: str,
    results: Mapping[str, list[Series]],
    window: float,
    inventory: Iterable[InventoryItem] | None = None,
    only: str | None = None,
) -> list[StatRow]:
    """`results` maps each PromQL text of `query` to its vector; rows sorted by (ns, name)."""
    group = query.group_by
    requests: dict[tuple[str, str], list[float]] = {}
    for labels, value in results.get(query.requests, []):
        key = _key(labels, group)
        if key is None or _number(value) is None:
            continue
        totals = requests.setdefault(key, [0.0, 0.0, 0.0])
        totals[0] += value
        if labels.get("classification") == "success":
            totals[1] += value
        if labels.get("tls") == "true":
            totals[2] += value
    quantiles = {q: _by_key(results.get(text, []), group) for q, text in query.latency.items()}
    tcp = _by_key(results.get(query.tcp, []), group) if query.tcp else None
    read = _by_key(results.get(query.read_bytes, []), group) if query.read_bytes else None
    write = _by_key(results.get(query.write_bytes, []), group) if query.write_bytes else None
    known = {(i.namespace, i.name): i for i in inventory or ()}
    rows = []
    for key in sorted(set(known) | set(requests)):
        if only is not None and key[1] != only:
            continue
        item = known.get(key)
        total, ok, tls = requests.get(key, [0.0, 0.0, 0.0])
        rows.append(
            StatRow(
                namespace=key[0],
                name=key[1],
                kind=kind,
                meshed=f"{item.meshed}/{item.total}" if item else None,
                requests=total,
                successes=ok,
                tls_requests=tls,
                window=window,
                p50=quantiles[0.5].get(key),
                p95=quantiles[0.95].get(key),
                p99=quantiles[0.99].get(key),
                tcp_conn=None if tcp is None else int(tcp.get(key, 0)),
                read_bytes=None if read is None else read.get(key, 0.0),
                write_bytes=None if write is None else write.get(key, 0.0),
            )
        )
    return rows
