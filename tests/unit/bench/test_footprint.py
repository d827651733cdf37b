"""Issue 15's soak target tells growth per handshake from an allocator settling once."""

from __future__ import annotations

from bench.footprint import TARGETS, render
from bench.parse import MemSample
from bench.report import Run
from bench.runner import RowResult, SoakResult

SOAK = "no growth over the TLS handshake soak (server-side meshed proxy)"


def _run(before: float, mid: float | None, after: float, failed: int = 0) -> Run:
    def mem(rss: float) -> MemSample:
        return MemSample(rss, rss - 10, rss - 13)

    row = RowResult(key="lacewing-mtls", label="lacewing pair, mTLS", family="tls")
    row.soak = SoakResult(
        50_000, failed, 93.0, mem(before), mem(after), 85.0,
        mem(mid) if mid is not None else None, 25_000,
    )  # fmt: skip
    run = Run("t", [("host", "h")], ["setup"])
    run.rows["lacewing-mtls"] = row
    return run


def _soak(run: Run) -> tuple[str, str]:
    verdict = next(t for t in TARGETS if t.text == SOAK).check(run)
    return verdict.status, verdict.figure


def test_growth_within_the_tolerance_over_the_whole_soak_passes() -> None:
    assert _soak(_run(34.0, 34.5, 34.9))[0] == "PASS"


def test_growth_in_the_first_half_only_is_settling_and_passes() -> None:
    status, figure = _soak(_run(34.1, 35.3, 35.4))
    assert status == "PASS"
    assert "(+1.30)" in figure and "second half (25,000 handshakes) +0.10 MiB RSS" in figure


def test_growth_in_both_halves_is_a_leak() -> None:
    status, figure = _soak(_run(34.0, 34.8, 35.6))
    assert status == "MISS" and "second half (25,000 handshakes) +0.80 MiB" in figure


def test_without_a_halfway_sample_the_whole_soak_is_judged() -> None:
    assert _soak(_run(34.1, None, 35.3))[0] == "MISS"
    assert _soak(_run(34.1, None, 34.9))[0] == "PASS"


def test_failed_handshakes_never_pass() -> None:
    status, figure = _soak(_run(34.0, 34.0, 34.0, failed=3))
    assert status == "MISS" and figure.endswith("3 failed")


def test_the_soak_table_shows_the_halfway_sample() -> None:
    assert "| 34.1 -> 35.3 -> 35.4 |" in "\n".join(render(_run(34.1, 35.3, 35.4)))
