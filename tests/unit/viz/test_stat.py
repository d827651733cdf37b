"""viz stat's per-workload figures, computed from two scrapes of synthetic proxy metrics."""

from __future__ import annotations

import io

import pytest

from lacewing.viz.promtext import parse
from lacewing.viz.stat import PodScrape, compute, quantile
from lacewing.viz.table import render_plain

BOUNDS = (1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100)


def metrics(
    ok: int, failed: int, latencies: dict[float, int], conns: int = 1, tls: str = "true"
) -> str:
    """What a proxy would export: inbound responses, a latency histogram, open connections."""
    base = f'direction="inbound",authority="web:8080",target_addr="10.42.0.10:8080",tls="{tls}"'
    lines = [
        f'response_total{{{base},status_code="200",classification="success"}} {ok}',
        f'response_total{{{base},status_code="500",classification="failure"}} {failed}',
        # outbound traffic of the same pod must not count for the workload
        'response_total{direction="outbound",authority="x",target_addr="y",tls="disabled",'
        'status_code="200",classification="success"} 1000',
        f'tcp_open_connections{{direction="inbound",peer="src",target_addr="a",tls="{tls}"}}'
        f" {conns}",
        'tcp_open_connections{direction="inbound",peer="dst",target_addr="a",tls="true"} 50',
    ]
    for bound in (*BOUNDS, float("inf")):
        running = sum(n for ms, n in latencies.items() if ms <= bound)
        le = "+Inf" if bound == float("inf") else str(bound)
        lines.append(f'response_latency_ms_bucket{{{base},le="{le}"}} {running}')
    return "\n".join(lines) + "\n"


def pod(name: str, text: str | None, workload: str = "web", meshed: bool = True) -> PodScrape:
    samples = tuple(parse(text)) if text is not None else None
    return PodScrape("shop", workload, name, meshed, samples)


def test_window_deltas_over_replicas() -> None:
    before = [
        pod("web-0", metrics(100, 10, {1: 110})),
        pod("web-1", metrics(50, 0, {1: 50})),
    ]
    after = [
        # web-0 gained 90 ok + 10 failed; web-1 gained 100 ok; all latencies in the window:
        # 150 answered within 2 ms, 40 within 10 ms, 10 within 50 ms.
        pod("web-0", metrics(190, 20, {1: 110, 2: 60, 10: 30, 50: 10}, conns=2)),
        pod("web-1", metrics(150, 0, {1: 50, 2: 90, 10: 10}, conns=3)),
    ]
    (row,) = compute(before, after, window=10.0)
    assert (row.namespace, row.name, row.meshed, row.pods) == ("shop", "web", 2, 2)
    assert row.requests == 200
    assert row.successes == 190
    assert row.success_rate == pytest.approx(0.95)
    assert row.rps == pytest.approx(20.0)
    assert row.tcp_conn == 5
    assert row.tls_share == 1.0
    # 150 of 200 within 2 ms: p50 = rank 100 of 150 in (1, 2] -> 1 + 100/150
    assert row.p50 == pytest.approx(1 + 100 / 150)
    # p95 = rank 190: 150 <= 2ms, 190 <= 10ms -> exactly the 10 ms bound
    assert row.p95 == pytest.approx(10.0)
    # p99 = rank 198 in (40, 50]: 190 below, 10 inside -> 40 + 10 * 8/10
    assert row.p99 == pytest.approx(48.0)


def test_restarted_proxy_counts_from_zero() -> None:
    before = [pod("web-0", metrics(500, 0, {1: 500}))]
    after = [pod("web-0", metrics(30, 10, {1: 40}, tls="disabled"))]
    (row,) = compute(before, after, window=4.0)
    assert (row.requests, row.successes, row.rps) == (40, 30, 10.0)
    assert row.tls_share == 0.0


def test_idle_and_unmeshed_workloads() -> None:
    before = [pod("web-0", metrics(5, 0, {1: 5}))]
    after = [
        pod("web-0", metrics(5, 0, {1: 5}, conns=0)),
        pod("bot-0", None, workload="bot", meshed=False),
    ]
    bot, web = compute(before, after, window=5.0)
    assert (bot.name, bot.meshed, bot.pods, bot.requests) == ("bot", 0, 1, 0)
    assert web.success_rate is None and web.p50 is None and web.rps == 0.0
    text = render_plain([bot, web])
    assert text.splitlines() == [
        "NAME   MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN",
        "bot       0/1         -   0.0rps             -             -             -          0",
        "web       1/1         -   0.0rps             -             -             -          0",
    ]


def test_table_with_figures() -> None:
    before = [pod("web-0", metrics(0, 0, {}))]
    after = [pod("web-0", metrics(7, 1, {1: 4, 20: 4}, conns=2))]
    text = render_plain(compute(before, after, window=4.0), namespace=True, tls=True)
    assert text.splitlines() == [
        "NAMESPACE   NAME   MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95"
        "   LATENCY_P99   TCP_CONN       TLS",
        "shop        web       1/1    87.50%   2.0rps         1.0ms          19ms"
        "          20ms          2   100.00%",
    ]


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, {}, None),
        (0.5, {1.0: 0.0, float("inf"): 0.0}, None),
        (0.5, {10.0: 4.0, float("inf"): 4.0}, 5.0),
        (0.99, {10.0: 1.0, float("inf"): 100.0}, 10.0),  # beyond the last finite bound
    ],
)
def test_quantile_edges(q: float, buckets: dict[float, float], expected: float | None) -> None:
    assert quantile(q, buckets) == expected


def test_rich_table_fits_80_columns() -> None:
    from rich.console import Console

    from lacewing.viz.table import render_rich

    before = [pod("web-0", metrics(0, 0, {}))]
    after = [pod("web-0", metrics(700, 100, {1: 400, 20: 400}, conns=12))]
    rows = compute(before, after, window=4.0)
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(render_rich(rows, "title"))
    text = console.export_text()
    assert "…" not in text
    assert "web      1/1   87.50%  200.0rps    1.0ms     19ms     20ms    12  100.00%" in text
