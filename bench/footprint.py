"""Issue 15's targets (footprint and speed) and the report sections behind them.

Memory here is read from /proc/PID/smaps_rollup, not VmRSS alone: RSS counts every resident
page, PSS divides shared pages among the processes mapping them, and private anonymous memory
(`Anonymous:`: the heap, the interpreter's objects, stacks) is what each extra sidecar on a
node really costs, since file-backed pages (the interpreter, libssl, .so and .pyc files) are
shared between the sidecars of a node. "Loaded" is a sample taken halfway through each
64-connection run; the figure judged is the largest over the runs. The soak row is the
server-side meshed proxy before, halfway through and after `Plan.soak_count` new mutual-TLS
connections (`bench/soak.py`). "No growth" means no growth per handshake: the RSS grew at most
`GROWTH_TOLERANCE_MIB` over the whole soak, or at most `SECOND_HALF_TOLERANCE_MIB` over its
second half. A leak grows in both halves alike; the allocator settling into its working set
(heap pages and arenas reaching the size the handshakes' churn needs, once) shows in the first
half only, and measured so: +0.9-1.2 MiB over the first 10,000 handshakes, then flat
(docs/benchmark.md, "Levers measured"). Start-up is exec -> the
first 200 from `/ready` (for a meshed proxy, the certificate is issued and installed by then),
polled every 10 ms. The issue's "MB" are read as MiB, as in issue 3's targets, with SI
megabytes shown beside them.

`TARGETS` are data like `report.TARGETS`; `render(run)` returns the lines the report puts
right after issue 3's targets: this issue's targets, then the memory, start-up and soak tables.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.parse import MemSample
from bench.report import (
    GROWTH_TOLERANCE_MIB,
    Run,
    Target,
    Verdict,
    _guarded,
    _latency,
    _mib,
    _Missing,
    _pair,
    _rps16_of,
    _status,
    _table,
)
from bench.runner import RowResult, SoakResult

__all__ = ["SECOND_HALF_TOLERANCE_MIB", "STARTUP_BUDGET_S", "TARGETS", "render", "soak_growth"]

STARTUP_BUDGET_S = 0.300
SECOND_HALF_TOLERANCE_MIB = 0.5
"""Growth allowed over the soak's second half (half of `GROWTH_TOLERANCE_MIB`, for half the
handshakes): 0.5 MiB over 25,000 handshakes is 21 bytes each."""
SIDES = ("client-side", "server-side")


def _loaded(row: RowResult) -> list[MemSample]:
    return [m for run in row.mem_loaded for m in run]


def _worst(row: RowResult, field: str) -> float:
    samples = _loaded(row)
    if not samples:
        raise _Missing(f"{row.key} row: no memory sample under the 64-connection load")
    return float(max(getattr(m, field) for m in samples))


def _memory(key: str, field: str, limit: float, what: str) -> Callable[[Run], Verdict]:
    @_guarded
    def check(run: Run) -> Verdict:
        row, _ = _pair(run, key, "haproxy")
        worst = _worst(row, field)
        return Verdict(_status(worst <= limit), f"{_mib(worst)} ({what}, largest of the pair)")

    return check


def soak_growth(s: SoakResult) -> tuple[float, float | None]:
    """RSS growth over the whole soak, and over its second half (None without a mid sample)."""
    whole = s.after.rss - s.before.rss
    return whole, (s.after.rss - s.mid.rss) if s.mid is not None else None


@_guarded
def _soak(run: Run) -> Verdict:
    row = run.rows.get("lacewing-mtls")
    if row is None or row.soak is None:
        raise _Missing("lacewing-mtls row: no soak run")
    s = row.soak
    whole, second = soak_growth(s)
    figure = (
        f"RSS {s.before.rss:.1f} -> {s.after.rss:.1f} MiB ({whole:+.2f}), private "
        f"{s.before.anon:.1f} -> {s.after.anon:.1f} MiB over {s.handshakes:,} handshakes "
        f"in {s.seconds:.0f} s"
    )
    if second is not None and s.mid is not None:
        figure += (
            f"; second half ({s.handshakes - s.mid_handshakes:,} handshakes) {second:+.2f} MiB "
            f"RSS, {s.after.anon - s.mid.anon:+.2f} private"
        )
    if s.failed:
        figure += f", {s.failed:,} failed"
    settled = second is not None and second <= SECOND_HALF_TOLERANCE_MIB
    no_growth = whole <= GROWTH_TOLERANCE_MIB or settled
    return Verdict(_status(no_growth and s.failed == 0), figure)


@_guarded
def _startup(run: Run) -> Verdict:
    times = {
        f"{key} {side}": t
        for key in ("lacewing", "lacewing-mtls")
        if (row := run.rows.get(key)) is not None
        for side, t in zip(SIDES, row.startup_s, strict=False)
        if t is not None
    }
    if not times:
        raise _Missing("no lacewing proxy start-up time recorded")
    worst = max(times, key=lambda k: times[k])
    return Verdict(
        _status(times[worst] <= STARTUP_BUDGET_S),
        f"slowest {times[worst] * 1000:.0f} ms ({worst}); "
        + ", ".join(f"{k} {v * 1000:.0f}" for k, v in times.items())
        + " ms",
    )


TARGETS: tuple[Target, ...] = (
    Target(
        "meshed proxy (identity) under 64-connection load: RSS <= 25 MB",
        _memory("lacewing-mtls", "rss", 25.0, "RSS"),
    ),
    Target(
        "meshed proxy under 64-connection load: private anonymous memory <= 15 MB",
        _memory("lacewing-mtls", "anon", 15.0, "Anonymous"),
    ),
    Target(
        "plaintext proxy under 64-connection load: RSS <= 20 MB",
        _memory("lacewing", "rss", 20.0, "RSS"),
    ),
    Target("no growth over the TLS handshake soak (server-side meshed proxy)", _soak),
    Target("ready (certificate included) within 300 ms of exec", _startup),
    Target(
        "plaintext pair requests/s at 16 connections >= 0.9x HAProxy's",
        _rps16_of("lacewing", "haproxy", 0.9),
    ),
    Target(
        "mTLS pair requests/s at 16 connections >= 0.9x HAProxy's mTLS pair",
        _rps16_of("lacewing-mtls", "haproxy-tls", 0.9),
    ),
    Target("plaintext pair added p50 at a fixed rate <= 1.25x HAProxy's", _latency("p50_us")),
    Target("plaintext pair added p99 at a fixed rate <= 1.25x HAProxy's", _latency("p99_us")),
    Target(
        "mTLS pair added p50 at a fixed rate <= 1.25x HAProxy's",
        _latency("p50_us", "lacewing-mtls", "haproxy-tls"),
    ),
    Target(
        "mTLS pair added p99 at a fixed rate <= 1.25x HAProxy's",
        _latency("p99_us", "lacewing-mtls", "haproxy-tls"),
    ),
)


def _cells(m: MemSample | None) -> list[str]:
    return ["-"] * 3 if m is None else [f"{m.rss:.1f}", f"{m.pss:.1f}", f"{m.anon:.1f}"]


def _section_memory(run: Run) -> list[str]:
    rows = []
    for row in run.rows.values():
        if not row.mem_idle:
            continue
        for i, side in enumerate(SIDES[: len(row.mem_idle)]):
            loaded = [r[i] for r in row.mem_loaded if i < len(r)]
            peak = max(loaded, key=lambda m: m.rss) if loaded else None
            start = row.startup_s[i] if i < len(row.startup_s) else None
            rows.append(
                [
                    f"{row.label}, {side}",
                    *_cells(row.mem_idle[i]),
                    *_cells(peak),
                    "-" if start is None else f"{start * 1000:.0f}",
                ]
            )
    header = [
        "proxy",
        "idle RSS",
        "idle PSS",
        "idle private",
        "loaded RSS",
        "loaded PSS",
        "loaded private",
        "exec -> ready ms",
    ]
    return [
        "## Memory from smaps_rollup (MiB) and start-up",
        "",
        *_table(header, rows),
        "",
        "Loaded: sampled halfway through each 64-connection run, the run with the largest RSS "
        "shown. Private is `Anonymous:` (heap and interpreter objects, not shared with other "
        "sidecars); PSS splits shared pages between the processes mapping them (on this "
        "machine every proxy of every row maps the same interpreter and libraries, so PSS is "
        "what one sidecar costs among this many). Exec -> ready: `/ready` answers 200, polled "
        "every 10 ms (meshed proxies: certificate issued and installed).",
        "",
    ]


def _steps(before: float, mid: float | None, after: float) -> str:
    return " -> ".join(f"{v:.1f}" for v in (before, mid, after) if v is not None)


def _section_soak(run: Run) -> list[str]:
    rows = []
    for row in run.rows.values():
        s = row.soak
        if s is None:
            continue
        rows.append(
            [
                f"{row.label}, server-side",
                f"{s.handshakes:,}",
                f"{s.failed:,}",
                f"{s.seconds:.0f}",
                f"{s.handshakes / s.seconds:,.0f}" if s.seconds > 0 else "-",
                f"{s.server_cpu_s * 1000 / s.handshakes:.2f}" if s.handshakes else "-",
                _steps(s.before.rss, s.mid.rss if s.mid else None, s.after.rss),
                _steps(s.before.anon, s.mid.anon if s.mid else None, s.after.anon),
            ]
        )
    if not rows:
        return []
    header = [
        "proxy",
        "handshakes",
        "failed",
        "seconds",
        "per second",
        "server CPU ms per handshake",
        "RSS MiB before -> halfway -> after",
        "private MiB before -> halfway -> after",
    ]
    return [
        "## TLS handshake soak",
        "",
        *_table(header, rows),
        "",
        "Each handshake is a new TLS 1.3 connection with a client certificate from the run's "
        "identity controller, one request with `Connection: close`, read to EOF "
        "(`bench/soak.py`, 4 client threads on the load core, TCP_NODELAY as a meshed proxy "
        "sets it); bounded by count and time, run in two halves with the memory read between "
        "them: growth per handshake shows in both halves, the allocator settling in the first. "
        "Server CPU: the server-side proxy's utime+stime over the soak, per handshake (TLS "
        "handshake, identity check, one proxied request, close).",
        "",
    ]


def render(run: Run) -> list[str]:
    lines = ["## Targets (issue 15, footprint and speed, this run)", ""]
    lines += _table(
        ["target", "result", "figure"],
        [[t.text, v.status, v.figure] for t in TARGETS for v in [t.check(run)]],
    )
    lines += ["", *_section_memory(run), *_section_soak(run)]
    return lines
