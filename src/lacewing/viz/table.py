"""Rendering `viz stat` rows: Linkerd's plain columns, and a rich table for the live demo.

    NAME    MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN
    web        1/1    87.50%   20.0rps           3ms           9ms          10ms          2

A workload without requests in the window shows `-` for success and latencies, as Linkerd does.
"""

from __future__ import annotations

from collections.abc import Sequence

from lacewing.viz.stat import WorkloadStat

__all__ = ["COLUMNS", "cells", "render_plain", "render_rich"]

COLUMNS = (
    "NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "TCP_CONN",
)  # fmt: skip


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def cells(row: WorkloadStat, *, tls: bool = False) -> list[str]:
    values = [
        row.name,
        f"{row.meshed}/{row.pods}",
        _pct(row.success_rate),
        f"{row.rps:.1f}rps",
        _ms(row.p50),
        _ms(row.p95),
        _ms(row.p99),
        str(row.tcp_conn),
    ]
    if tls:
        values.append(_pct(row.tls_share))
    return values


def render_plain(
    rows: Sequence[WorkloadStat], *, namespace: bool = False, tls: bool = False
) -> str:
    header = list(COLUMNS) + (["TLS"] if tls else [])
    table = [header] + [cells(r, tls=tls) for r in rows]
    if namespace:
        table = [["NAMESPACE", *table[0]]] + [
            [r.namespace, *c] for r, c in zip(rows, table[1:], strict=True)
        ]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = []
    for line in table:
        parts = (
            [line[0].ljust(widths[0])]
            if not namespace
            else [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        )
        start = len(parts)
        parts += [c.rjust(w) for c, w in zip(line[start:], widths[start:], strict=True)]
        lines.append("   ".join(parts))
    return "\n".join(lines) + "\n"


def render_rich(rows: Sequence[WorkloadStat], title: str, *, tls: bool = True) -> object:
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for i, column in enumerate(list(COLUMNS) + (["TLS"] if tls else [])):
        # LATENCY_P50 -> two header lines, so the table fits an 80-column terminal
        header = column.replace("_", "\n")
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*cells(row, tls=tls))
    return table
