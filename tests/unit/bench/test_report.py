"""The issue's targets are judged from the rows of one run, against the HAProxy pair."""

from __future__ import annotations

from bench.parse import WrkResult
from bench.report import TARGETS, Run, findings, render
from bench.runner import FixedRate, RowResult


def _wrk(rps: float, p50: float, p99: float) -> WrkResult:
    return WrkResult(int(rps * 10), 10.0, rps, p50, p50, p99, p99, 0)


def _row(key: str, rps: float, fixed: tuple[float, float], cpu: float, rss: float,
         family: str = "plain") -> RowResult:  # fmt: skip
    proxies = () if key.startswith("direct") else (cpu, cpu)
    return RowResult(
        key=key,
        label=key,
        family=family,
        c1=_wrk(rps / 4, 100, 200),
        c16=_wrk(rps, 300, 900),
        cpu_us_per_req=proxies,
        fixed=FixedRate(5000, 4990.0, fixed[0], fixed[1], 0),
        rss_idle_mib=tuple(rss for _ in proxies),
        rss_runs_mib=[tuple(rss + 1 + i * 0.1 for _ in proxies) for i in range(3)],
    )


def _run(lacewing: RowResult, lacewing_h2_rps: float | None = None) -> Run:
    run = Run("t", [("host", "h")], ["setup"])
    run.rows["direct"] = _row("direct", 60000, (200, 400), 0, 0)
    run.rows["haproxy"] = _row("haproxy", 20000, (300, 600), 20.0, 15.0)
    run.rows["lacewing"] = lacewing
    if lacewing_h2_rps is not None:
        run.rows["haproxy-h2"] = _row("haproxy-h2", 40000, (300, 600), 20.0, 15.0, "h2")
        run.rows["lacewing-h2"] = _row("lacewing-h2", lacewing_h2_rps, (0, 0), 29, 25, "h2")
    return run


def test_a_lean_enough_pair_passes_every_target() -> None:
    # rps 0.85x; adds +120/+240 us vs HAProxy's +100/+200 (1.2x); CPU 1.45x; 25 MiB idle.
    run = _run(_row("lacewing", 17000, (320, 640), 29.0, 25.0), lacewing_h2_rps=34000)
    assert [t.check(run).status for t in TARGETS] == ["PASS"] * len(TARGETS)
    assert "| lacewing-h2 |" in render(run)


def test_each_miss_is_reported_with_its_figure() -> None:
    slow = _row("lacewing", 12000, (500, 1400), 40.0, 35.0)
    slow.rss_runs_mib = [(36.0, 36.0), (38.0, 38.0), (41.0, 36.0)]
    run = _run(slow, lacewing_h2_rps=24000)
    got = {t.text: t.check(run) for t in TARGETS}
    statuses = [v.status for v in got.values()]
    assert statuses == ["MISS"] * len(TARGETS)
    h2 = got["HTTP/2 requests/s at 16 connections x 10 streams >= 0.8x the HAProxy h2 pair"]
    assert h2.figure.startswith("0.60x (24,000 vs 40,000 req/s")
    rps = got["requests/s at 16 connections >= 0.8x the HAProxy HTTP pair"]
    assert rps.figure.startswith("0.60x")
    p50 = got["latency added at a fixed rate, p50 <= 1.25x HAProxy pair's"]
    assert p50.figure.startswith("3.00x (+300 us vs +100 us")
    growth = got["no RSS growth across three repeated 64-connection runs"]
    assert growth.figure.startswith("+5.00 MiB")
    text = render(run)
    assert "| MISS | 0.60x" in text


def test_unmeasured_lacewing_row_is_not_a_pass() -> None:
    missing = RowResult("lacewing", "lacewing", "plain", error="`lacewing proxy` not available")
    run = _run(missing)
    assert {t.check(run).status for t in TARGETS} == {"NOT MEASURED"}
    assert "`lacewing proxy` not available" in render(run)


def test_a_rate_not_held_cannot_pass_the_latency_targets() -> None:
    row = _row("lacewing", 17000, (320, 640), 29.0, 25.0)
    row.fixed = FixedRate(5000, 3000.0, 320, 640, 0)
    run = _run(row)
    latency = [t.check(run) for t in TARGETS if "latency" in t.text]
    assert [v.status for v in latency] == ["NOT MEASURED", "NOT MEASURED"]
    assert "did not sustain" in latency[0].figure


def test_failed_requests_cannot_pass_on_speed() -> None:
    row = _row("lacewing", 30000, (320, 640), 29.0, 25.0)
    assert row.c16 is not None
    row.c16 = WrkResult(300000, 10.0, 30000.0, 100, 100, 200, 200, errors=1200)
    verdict = TARGETS[0].check(_run(row))
    assert verdict.status == "MISS"
    assert "1,200 requests failed" in verdict.figure


def test_round_ratios_are_shown_with_the_throughput_verdict() -> None:
    run = _run(_row("lacewing", 17000, (320, 640), 29.0, 25.0))
    run.rows["lacewing"].c16_rounds = [_wrk(16000, 1, 1), _wrk(18000, 1, 1)]
    run.rows["haproxy"].c16_rounds = [_wrk(20000, 1, 1), _wrk(20000, 1, 1)]
    verdict = TARGETS[0].check(run)
    assert verdict.figure.endswith("; rounds 0.80 / 0.90)")


def test_findings_split_the_cpu_gap_and_name_what_would_close_it() -> None:
    run = _run(_row("lacewing", 17000, (320, 640), 30.0, 25.0))
    run.rows["haproxy"].components = {
        "haproxy-outbound": {"kernel": 0.75, "HAProxy": 0.25},
        "haproxy-inbound": {"kernel": 0.75, "HAProxy": 0.25},
    }
    run.rows["lacewing"].components = {
        "lacewing-outbound": {"kernel": 0.5, "Python interpreter": 0.4, "uvloop (libuv)": 0.1},
        "lacewing-inbound": {"kernel": 0.5, "Python interpreter": 0.4, "uvloop (libuv)": 0.1},
    }
    lines = findings(run)
    assert len(lines) == 2
    assert lines[0].startswith(
        "lacewing-outbound: 30.0 us/req CPU vs 20.0 for the same-side HAProxy: "
        "kernel 15.0 vs 15.0 us, own code 15.0 vs 5.0 us (largest: Python interpreter 12.0 us)"
    )
    assert "What would close it (candidates): fewer Python operations" in lines[0]


def test_no_findings_without_a_profile() -> None:
    assert findings(_run(_row("lacewing", 17000, (320, 640), 30.0, 25.0))) == []
