"""Issue 3's targets as data, their PASS/MISS verdicts, and the markdown report.

`TARGETS` lists each target as the issue states it, with a function from the run's results to
a `Verdict` (PASS, MISS, or NOT MEASURED with the reason) and the figure behind it. Ratios are
always taken between rows of the same run, against the HAProxy row of the same family
(`haproxy` for plaintext rows, `haproxy-tls` for mTLS rows). "Latency added" is a row's
percentile minus the direct row's at the same load. Memory is VmRSS in MiB; the memory targets'
"MB" are read as MiB, and the figures show SI megabytes too.

`render(run)` builds the whole report: machine, setup, targets, then one table per measure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.profile import COMPONENTS
from bench.runner import RATE_CLIENTS, FixedRate, RowResult

__all__ = [
    "ADVICE",
    "GROWTH_TOLERANCE_MIB",
    "TARGETS",
    "Run",
    "Target",
    "Verdict",
    "findings",
    "render",
]

GROWTH_TOLERANCE_MIB = 1.0  # "no growth": RSS after run 3 at most this much above run 1


@dataclass
class Run:
    title: str
    machine: list[tuple[str, str]]
    setup: list[str]
    rows: dict[str, RowResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    status: str  # "PASS", "MISS" or "NOT MEASURED"
    figure: str


@dataclass(frozen=True)
class Target:
    text: str
    check: Callable[[Run], Verdict]


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def _pair(run: Run, key: str = "lacewing", base: str = "haproxy") -> tuple[RowResult, RowResult]:
    """The row and its baseline, or raise _Missing naming what was not measured."""
    row, ref = run.rows.get(key), run.rows.get(base)
    for name, r in ((key, row), (base, ref)):
        if r is None or not r.measured:
            reason = r.error if r is not None and r.error else "not run"
            raise _Missing(f"{name} row: {reason}")
    assert row is not None and ref is not None
    return row, ref


class _Missing(Exception):
    pass


def _guarded(check: Callable[[Run], Verdict]) -> Callable[[Run], Verdict]:
    def wrapped(run: Run) -> Verdict:
        try:
            return check(run)
        except _Missing as exc:
            return Verdict("NOT MEASURED", str(exc))

    return wrapped


def _status(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _rps16_of(key: str, base: str, at_least: float = 0.8) -> Callable[[Run], Verdict]:
    @_guarded
    def check(run: Run) -> Verdict:
        return _rps16(run, key, base, at_least)

    return check


def _rps16(run: Run, key: str, base: str, at_least: float = 0.8) -> Verdict:
    row, ref = _pair(run, key, base)
    assert row.c16 and ref.c16
    r = row.c16.rps / ref.c16.rps
    figure = f"{r:.2f}x ({row.c16.rps:,.0f} vs {ref.c16.rps:,.0f} req/s"
    rounds = _round_ratios(row, ref)
    figure += f"; rounds {rounds})" if rounds != "-" else ")"
    if row.c16.errors:
        # Fast errors are not throughput: a pair answering 502s must not pass on speed.
        return Verdict("MISS", f"{figure}, but {row.c16.errors:,} requests failed")
    return Verdict(_status(r >= at_least), figure)


def _added(run: Run, key: str, pct: str) -> float:
    row, direct = run.rows.get(key), run.rows.get("direct")
    if direct is None or direct.fixed is None:
        raise _Missing("direct row: fixed-rate run missing")
    if row is None or row.fixed is None:
        raise _Missing(f"{key} row: fixed-rate run missing")
    for r in (row, direct):
        if not r.fixed or not r.fixed.sustained:
            raise _Missing(f"{r.key} row did not sustain the fixed rate")
    return float(getattr(row.fixed, pct) - getattr(direct.fixed, pct))


def _round_ratios(row: RowResult, ref: RowResult | None) -> str:
    """Requests/s ratio of each 16-connection round, which shows how steady the machine was."""
    if ref is None or len(row.c16_rounds) < 2:
        return "-"
    pairs = zip(row.c16_rounds, ref.c16_rounds, strict=False)
    return " / ".join(f"{a.rps / b.rps:.2f}" for a, b in pairs if b.rps > 0)


def _latency(pct: str, key: str = "lacewing", base: str = "haproxy") -> Callable[[Run], Verdict]:
    @_guarded
    def check(run: Run) -> Verdict:
        _pair(run, key, base)
        ours, theirs = _added(run, key, pct), _added(run, base, pct)
        rate = run.rows[key].fixed
        assert rate is not None
        if theirs <= 0:
            ok = ours <= theirs + 10.0
            return Verdict(
                _status(ok),
                f"+{ours:.0f} us vs HAProxy {theirs:+.0f} us at {rate.asked_rps:,} req/s "
                "(HAProxy added nothing measurable; PASS means within 10 us of it)",
            )
        r = ours / theirs
        return Verdict(
            _status(r <= 1.25),
            f"{r:.2f}x (+{ours:.0f} us vs +{theirs:.0f} us at {rate.asked_rps:,} req/s)",
        )

    return check


@_guarded
def _cpu(run: Run) -> Verdict:
    row, ref = _pair(run)
    ratios = [a / b for a, b in zip(row.cpu_us_per_req, ref.cpu_us_per_req, strict=True) if b]
    worst = max(ratios)
    sides = ", ".join(
        f"{side} {a:.1f} vs {b:.1f} us"
        for side, a, b in zip(
            ("client-side", "server-side"), row.cpu_us_per_req, ref.cpu_us_per_req, strict=False
        )
    )
    return Verdict(_status(worst <= 1.5), f"worst {worst:.2f}x ({sides})")


def _mib(value: float) -> str:
    """MiB (what the target is checked in), with SI megabytes beside it, since the issue says MB."""
    return f"{value:.1f} MiB = {value * 1.048576:.1f} MB"


@_guarded
def _rss_idle(run: Run) -> Verdict:
    row, _ = _pair(run)
    worst = max(row.rss_idle_mib)
    return Verdict(_status(worst <= 30.0), f"{_mib(worst)} (largest of the pair)")


@_guarded
def _rss_loaded(run: Run) -> Verdict:
    row, _ = _pair(run)
    if not row.rss_runs_mib:
        raise _Missing("lacewing row: no 64-connection runs")
    worst = max(max(r) for r in row.rss_runs_mib)
    return Verdict(_status(worst <= 40.0), f"{_mib(worst)} (largest of the pair, any run)")


@_guarded
def _growth(run: Run) -> Verdict:
    row, _ = _pair(run)
    if len(row.rss_runs_mib) < 2:
        raise _Missing("lacewing row: fewer than two 64-connection runs")
    growth = [
        last - first for first, last in zip(row.rss_runs_mib[0], row.rss_runs_mib[-1], strict=True)
    ]
    worst = max(growth)
    return Verdict(
        _status(worst <= GROWTH_TOLERANCE_MIB),
        f"{worst:+.2f} MiB from run 1 to run {len(row.rss_runs_mib)} "
        f"(tolerance {GROWTH_TOLERANCE_MIB:g} MiB)",
    )


TARGETS: tuple[Target, ...] = (
    Target(
        "requests/s at 16 connections >= 0.8x the HAProxy HTTP pair",
        _rps16_of("lacewing", "haproxy"),
    ),
    Target(
        "HTTP/2 requests/s at 16 connections x 10 streams >= 0.8x the HAProxy h2 pair",
        _rps16_of("lacewing-h2", "haproxy-h2"),
    ),
    Target("latency added at a fixed rate, p50 <= 1.25x HAProxy pair's", _latency("p50_us")),
    Target("latency added at a fixed rate, p99 <= 1.25x HAProxy pair's", _latency("p99_us")),
    Target("CPU per request per proxy <= 1.5x HAProxy's", _cpu),
    Target("idle RSS <= 30 MB per proxy", _rss_idle),
    Target("RSS after a 64-connection run <= 40 MB per proxy", _rss_loaded),
    Target("no RSS growth across three repeated 64-connection runs", _growth),
)


# --- what the profile says -------------------------------------------------------------------

# What would cut the CPU a component takes, for the component that dominates the gap.
ADVICE: dict[str, str] = {
    "Python interpreter": (
        "fewer Python operations per request on the hot path: forward header bytes instead of "
        "rebuilding them, fewer httptools callbacks (no per-header on_header work), no "
        "per-request objects or closures, pre-resolved metric counters"
    ),
    "kernel": (
        "fewer system calls per request (one write per message, more requests per wake-up), "
        "see the system call table"
    ),
    "httptools (llhttp)": "parse less: skip parsing bodies and headers that are only forwarded",
    "uvloop (libuv)": "fewer transport calls per request (write once, pause/resume less)",
    "OpenSSL": "reuse TLS sessions and connections between the proxies",
    "libc": "fewer allocations and copies per request",
}


def findings(run: Run) -> list[str]:
    """One line per lacewing proxy: its CPU gap to HAProxy, split by component, and what to do."""
    row, ref = run.rows.get("lacewing"), run.rows.get("haproxy")
    if row is None or ref is None or not row.components or not ref.components:
        return []
    lines = []
    ours_all = list(row.components.items())
    theirs_all = list(ref.components.values())
    for i, (name, ours) in enumerate(ours_all):
        if i >= len(theirs_all) or i >= len(row.cpu_us_per_req) or i >= len(ref.cpu_us_per_req):
            break
        theirs, cpu_ours, cpu_theirs = theirs_all[i], row.cpu_us_per_req[i], ref.cpu_us_per_req[i]
        kernel_ours = ours.get("kernel", 0.0) * cpu_ours
        kernel_theirs = theirs.get("kernel", 0.0) * cpu_theirs
        own = {c: share * cpu_ours for c, share in ours.items() if c != "kernel"}
        own_theirs = cpu_theirs - kernel_theirs
        top = max(own, key=lambda c: own[c]) if own else None
        biggest = "kernel" if kernel_ours - kernel_theirs > sum(own.values()) - own_theirs else top
        advice = ADVICE.get(biggest or "", "")
        lines.append(
            f"{name}: {cpu_ours:.1f} us/req CPU vs {cpu_theirs:.1f} for the same-side HAProxy: "
            f"kernel {kernel_ours:.1f} vs {kernel_theirs:.1f} us, own code "
            f"{sum(own.values()):.1f} vs {own_theirs:.1f} us"
            + (f" (largest: {top} {own[top]:.1f} us)" if top else "")
            + (
                f". What would close it (candidates): {advice}."
                if advice and cpu_ours > cpu_theirs
                else "."
            )
        )
    return lines


# --- rendering -------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _us(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


BASELINES = {
    "plain": "haproxy",
    "tls": "haproxy-tls",
    "h2": "haproxy-h2",
    "h2-tls": "haproxy-h2-tls",
}


def _baseline(run: Run, row: RowResult) -> RowResult | None:
    ref = run.rows.get(BASELINES[row.family])
    return ref if ref is not None and ref.measured and ref is not row else None


def _section_throughput(run: Run) -> list[str]:
    rows = []
    for row in run.rows.values():
        if not row.measured:
            continue
        assert row.c1 and row.c16
        ref = _baseline(run, row)
        rows.append(
            [
                row.label,
                f"{row.c1.rps:,.0f}",
                _us(row.c1.p50_us),
                _us(row.c1.p99_us),
                f"{row.c16.rps:,.0f}",
                _us(row.c16.p50_us),
                _us(row.c16.p99_us),
                _fmt_ratio(_ratio(row.c16.rps, ref.c16.rps if ref and ref.c16 else None)),
                _round_ratios(row, ref),
                f"{row.c1.errors + row.c16.errors:,}",
            ]
        )
    return [
        "## Throughput and latency, closed loop (wrk for HTTP/1, h2load for HTTP/2)",
        "",
        *_table(
            [
                "row",
                "req/s c1",
                "p50 us c1",
                "p99 us c1",
                "req/s c16",
                "p50 us c16",
                "p99 us c16",
                "req/s c16 vs HAProxy",
                "each round vs HAProxy",
                "failed requests",
            ],
            rows,
        ),
        "",
    ]


def _section_added(run: Run) -> list[str]:
    direct = run.rows.get("direct")
    if direct is None or not direct.measured:
        return ["## Latency added per pair", "", "Not measured: the direct row did not run.", ""]
    rows = []
    for row in run.rows.values():
        if not row.measured or row is direct or row.family.startswith("h2"):  # HTTP/1 only
            continue
        assert row.c1 and direct.c1
        ref = _baseline(run, row)
        c1_added = row.c1.p50_us - direct.c1.p50_us, row.c1.p99_us - direct.c1.p99_us
        cells = [row.label, f"{c1_added[0]:+.0f}", f"{c1_added[1]:+.0f}"]
        fixed_added: tuple[float, float] | None = None
        if row.fixed and direct.fixed:
            fixed_added = (
                row.fixed.p50_us - direct.fixed.p50_us,
                row.fixed.p99_us - direct.fixed.p99_us,
            )
            held = "" if row.fixed.sustained else " (rate not held)"
            cells += [
                f"{fixed_added[0]:+.0f}{held}",
                f"{fixed_added[1]:+.0f}",
                f"{row.fixed.rps:,.0f}",
            ]
        else:
            cells += ["-", "-", "-"]
        ratios = ["-", "-"]
        if ref is not None and ref.fixed and direct.fixed and fixed_added:
            ref_added = (
                ref.fixed.p50_us - direct.fixed.p50_us,
                ref.fixed.p99_us - direct.fixed.p99_us,
            )
            ratios = [_fmt_ratio(_ratio(a, b)) for a, b in zip(fixed_added, ref_added, strict=True)]
        rows.append([*cells, *ratios, _busy_cell(row.fixed)])
    fixed = direct.fixed
    rate_line = (
        f"Direct at the fixed rate: p50 {fixed.p50_us:.0f} us, p99 {fixed.p99_us:.0f} us, "
        f"{fixed.rps:,.0f} req/s."
        if fixed
        else ""
    )
    return [
        "## Latency added per pair (row minus direct, microseconds)",
        "",
        *_table(
            [
                "row",
                "p50 c1",
                "p99 c1",
                "p50 fixed rate",
                "p99 fixed rate",
                "achieved req/s",
                "p50 added vs HAProxy",
                "p99 added vs HAProxy",
                "proxy core at the fixed rate: proxies / all",
            ],
            rows,
        ),
        "",
        f"Direct at 1 connection: p50 {direct.c1.p50_us if direct.c1 else 0:.0f} us. {rate_line}",
        "",
        "At a fixed rate, latency grows with how busy the proxies' core is (the proxies' own "
        "CPU per request times the rate, plus whatever else runs there): requests wait for "
        "the core before any proxy code runs.",
        "",
    ]


def _busy_cell(fixed: FixedRate | None) -> str:
    if fixed is None or fixed.proxies_busy is None or fixed.core_busy is None:
        return "-"
    return f"{100 * fixed.proxies_busy:.0f}% / {100 * fixed.core_busy:.0f}%"


def _section_cpu(run: Run) -> list[str]:
    rows = []
    for row in run.rows.values():
        if not row.measured:
            continue
        ref = _baseline(run, row)
        per = row.cpu_us_per_req
        refs = ref.cpu_us_per_req if ref else ()
        ratios = [_fmt_ratio(_ratio(a, b)) for a, b in zip(per, refs, strict=False)]
        busy = row.core_busy_all
        rows.append(
            [
                row.label,
                " / ".join(f"{v:.1f}" for v in per) or "-",
                " / ".join(f"{v:.1f}" for v in row.user_us_per_req) or "-",
                " / ".join(ratios) or "-",
                "-" if row.proxy_core_busy is None else f"{100 * row.proxy_core_busy:.0f}%",
                "-" if busy is None else f"{100 * busy[0]:.0f}% / {100 * busy[1]:.0f}%",
                "-" if row.backend_cpu_us_per_req is None else f"{row.backend_cpu_us_per_req:.1f}",
            ]
        )
    header = [
        "row",
        "us/req client-side / server-side",
        "of which user space",
        "vs HAProxy (each side)",
        "proxy core used by the proxies",
        "busy, all processes: load core / proxy core",
        "backend us/req",
    ]
    return [
        "## CPU per request (16-connection wrk run; utime+stime from /proc / requests)",
        "",
        *_table(header, rows),
        "",
        "The rest of each figure is kernel time, mostly the socket calls (counted per request "
        "below when a profile is taken). "
        "When the proxies use nearly all of their core, they, not the backend, set the pace. "
        "Busy time on a core beyond what our processes used is other work on this machine, "
        "which slows every row it hits.",
        "",
    ]


def _section_memory(run: Run) -> list[str]:
    rows = []
    for row in run.rows.values():
        if not row.measured or not row.rss_idle_mib:
            continue
        ref = _baseline(run, row)
        for i, side in enumerate(("client-side", "server-side")[: len(row.rss_idle_mib)]):
            runs = [r[i] for r in row.rss_runs_mib]
            ref_runs = [r[i] for r in ref.rss_runs_mib] if ref else []
            growth = runs[-1] - runs[0] if len(runs) > 1 else None
            rows.append(
                [
                    f"{row.label}, {side}",
                    f"{row.rss_idle_mib[i]:.1f}",
                    " / ".join(f"{v:.1f}" for v in runs) or "-",
                    "-" if growth is None else f"{growth:+.2f}",
                    _fmt_ratio(_ratio(row.rss_idle_mib[i], ref.rss_idle_mib[i] if ref else None)),
                    _fmt_ratio(
                        _ratio(max(runs) if runs else None, max(ref_runs) if ref_runs else None)
                    ),
                ]
            )
    return [
        "## Memory (VmRSS, MiB)",
        "",
        *_table(
            [
                "proxy",
                "idle",
                "after 64-conn runs 1 / 2 / 3",
                "growth run 1 -> 3",
                "idle vs HAProxy",
                "loaded vs HAProxy",
            ],
            rows,
        ),
        "",
    ]


def _section_components(run: Run) -> list[str]:
    names = [c for c, _ in COMPONENTS] + ["other"]
    used = [
        n
        for n in names
        if any(n in parts for r in run.rows.values() for parts in r.components.values())
    ]
    rows = []
    for row in run.rows.values():
        for i, (proxy, parts) in enumerate(row.components.items()):
            per_req = row.cpu_us_per_req[i] if i < len(row.cpu_us_per_req) else None
            cells = [f"{row.label}: {proxy}"]
            for name in used:
                share = parts.get(name, 0.0)
                us = f" ({share * per_req:.1f} us)" if per_req is not None and share else ""
                cells.append(f"{share:.0%}{us}" if share else "-")
            rows.append(cells)
    if not rows:
        return []
    return [
        "## Where each proxy's CPU goes (perf, extra 16-connection run)",
        "",
        *_table(["proxy", *used], rows),
        "",
        "Shares of perf's cpu-clock samples; microseconds are the share times the CPU per "
        "request measured above. The kernel's part is what any proxy pays for its socket "
        "calls; the rest is the proxy's own code and runtime.",
        "",
    ]


def _section_syscalls(run: Run) -> list[str]:
    rows = []
    for row in run.rows.values():
        ref = _baseline(run, row)
        ref_counts = list(ref.syscalls.values()) if ref else []
        for i, (name, counts) in enumerate(row.syscalls.items()):
            base = ref_counts[i] if i < len(ref_counts) else None
            rows.append(
                [
                    f"{row.label}: {name}",
                    f"{counts.per_request('writes'):.2f}",
                    f"{counts.per_request('reads'):.2f}",
                    f"{counts.per_request('polls'):.2f}",
                    f"{counts.per_request():.2f}",
                    _fmt_ratio(_ratio(counts.per_request(), base.per_request() if base else None)),
                ]
            )
    if not rows:
        return []
    header = ["proxy", "writes/req", "reads/req", "polls/req", "all syscalls/req", "vs HAProxy"]
    return [
        "## System calls per request (strace -c, extra 16-connection run, counts only)",
        "",
        *_table(header, rows),
        "",
        "On loopback the kernel's work per call is most of a hop's cost, so fewer calls per "
        "request (one write per message, several requests per wake-up) is the cheapest win.",
        "",
    ]


def _section_profile(run: Run) -> list[str]:
    out: list[str] = []
    for row in run.rows.values():
        for name, prof in row.profiles.items():
            if not out:
                out = [
                    "## Profile (py-spy, extra 16-connection run, not part of the figures)",
                    "",
                    "py-spy sees Python frames only: time in a C call made from a Python "
                    "function (transport.write and the kernel's send under it) counts as that "
                    "function's self time, and time in the loop's own C code (reads, epoll, "
                    "callbacks' dispatch) shows as the event loop.",
                    "",
                ]
            out += [f"{name}, {prof.samples} samples (shares of samples with work):", ""]
            pairs = list(zip(prof.self_time, prof.inclusive, strict=False))
            out += _table(
                ["self", "function (self time)", "inclusive", "function (inclusive)"],
                [
                    [f"{a.share:.0%}", f"`{a.function}`", f"{b.share:.0%}", f"`{b.function}`"]
                    for a, b in pairs
                ],
            )
            out.append("")
    return out


def render(run: Run, after_targets: Sequence[str] = ()) -> str:
    """The report; `after_targets` (lines) goes right after issue 3's targets table."""
    lines = [f"# {run.title}", "", "## Machine", ""]
    lines += [*_table(["", ""], run.machine), ""]
    lines += ["## Setup", "", *[f"- {s}" for s in run.setup], ""]
    lines += ["## Targets (issue 3, plaintext pair vs HAProxy pair, this run)", ""]
    lines += _table(
        ["target", "result", "figure"],
        [[t.text, v.status, v.figure] for t in TARGETS for v in [t.check(run)]],
    )
    lines += ["", *after_targets]
    skipped = [r for r in run.rows.values() if not r.measured]
    if skipped:
        lines += ["Rows not measured:", ""]
        lines += [f"- {r.label}: {r.error}" for r in skipped] + [""]
    lines += _section_throughput(run)
    lines += _section_added(run)
    lines += _section_cpu(run)
    lines += _section_memory(run)
    lines += [
        "Fixed-rate runs: h2load, HTTP/1.1 keep-alive, "
        f"{RATE_CLIENTS} connections, one request in flight each.",
        "",
    ]
    lines += _section_components(run)
    lines += _section_syscalls(run)
    lines += _section_profile(run)
    if run.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in run.notes], ""]
    return "\n".join(lines)
