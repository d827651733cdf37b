"""Rounds of the 16-connection run add up to one figure, and the plan is the same for all rows."""

from __future__ import annotations

from bench.parse import WrkResult
from bench.runner import Plan, merge_rounds, steps


def test_rounds_merge_into_total_rate_and_median_percentiles() -> None:
    rounds = [
        WrkResult(30_000, 3.0, 10_000.0, 500, 600, 700, 900, 0),
        WrkResult(15_000, 3.0, 5_000.0, 900, 1000, 1100, 5000, 2),
        WrkResult(36_000, 3.0, 12_000.0, 400, 500, 600, 800, 1),
    ]
    merged = merge_rounds(rounds)
    assert merged.requests == 81_000
    assert merged.seconds == 9.0
    assert merged.rps == 9_000.0  # all requests over all time, not a mean of rates
    assert (merged.p50_us, merged.p99_us) == (500, 900)  # the median round's
    assert merged.errors == 3


def test_plan_steps_in_order_with_rounds_and_memory_runs() -> None:
    plan = Plan(duration_s=2, warmup_s=1, mem_run_s=1, rate=5000, rounds=2, mem_runs=3)
    names = [name for name, _ in steps(plan)]
    assert names == [
        "idle RSS",
        "warm-up",
        "wrk, 1 connection",
        "wrk, 16 connections, round 1/2",
        "wrk, 16 connections, round 2/2",
        "fixed rate 5,000 req/s",
        "wrk, 64 connections, run 1",
        "wrk, 64 connections, run 2",
        "wrk, 64 connections, run 3",
        "TLS handshake soak",
    ]
