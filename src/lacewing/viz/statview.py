"""Rendering `viz stat` rows as Linkerd does: `-o table` (default), `-o wide`, `-o json`.

    NAME    MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN
    web        1/1    87.50%   20.0rps         3.0ms         9.0ms          10ms          2

`wide` adds READ_BYTES/SEC and WRITE_BYTES/SEC; with all namespaces (`-A`) a NAMESPACE column
comes first. A figure that is not known or not defined (no requests, no recent latency, TCP
for an outbound view) is `-`. JSON is a list of objects with Linkerd's keys (`success` as a
fraction, `rps`, `latency_ms_p50`, ..., `tcp_open_connections`, `tcp_read_bytes_rate`,
`tcp_write_bytes_rate`), plus `requests`, the count over the window, with null for unknowns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from lacewing.viz.statquery import row_dict
from lacewing.viz.summary import StatRow

__all__ = ["OUTPUTS", "render"]

OUTPUTS = ("table", "wide", "json")
COLUMNS = ("NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99",
           "TCP_CONN")  # fmt: skip
WIDE = ("READ_BYTES/SEC", "WRITE_BYTES/SEC")


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}B/s"


def _cells(row: StatRow, wide: bool) -> list[str]:
    traffic = row.requests > 0
    values = [
        row.name,
        row.meshed or "-",
        _pct(row.success_rate),
        f"{row.rps:.1f}rps" if traffic or row.meshed else "-",
        _ms(row.p50),
        _ms(row.p95),
        _ms(row.p99),
        "-" if row.tcp_conn is None else str(row.tcp_conn),
    ]
    if wide:
        values += [_rate(row.read_rate), _rate(row.write_rate)]
    return values


def _table(rows: Sequence[StatRow], namespaces: bool, wide: bool) -> str:
    header = list(COLUMNS) + (list(WIDE) if wide else [])
    table = [header] + [_cells(r, wide) for r in rows]
    left = 1
    if namespaces:
        table = [["NAMESPACE", *header]] + [
            [r.namespace, *c] for r, c in zip(rows, table[1:], strict=True)
        ]
        left = 2
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = []
    for line in table:
        parts = [c.ljust(w) for c, w in zip(line[:left], widths[:left], strict=True)]
        parts += [c.rjust(w) for c, w in zip(line[left:], widths[left:], strict=True)]
        lines.append("   ".join(parts))
    return "\n".join(lines) + "\n"


def _json(rows: Sequence[StatRow]) -> str:
    return json.dumps([row_dict(r) for r in rows], indent=2) + "\n"


def render(rows: Sequence[StatRow], output: str, *, namespaces: bool = False) -> str:
    if output == "json":
        return _json(rows)
    return _table(rows, namespaces, wide=output == "wide")
