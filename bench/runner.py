"""The measurement plan every row goes through, and what it records.

Every row goes through the same steps (`steps(plan)`, in this order):

1. idle RSS of each proxy, read after `settle_s` with no traffic;
2. a wrk warm-up at 16 connections (not recorded);
3. wrk, 1 connection, `duration_s`: closed-loop latency of one keep-alive connection;
4. wrk, 16 connections, `duration_s` split into `rounds` rounds: throughput; around each round
   each proxy's utime+stime is read, and CPU per request = CPU seconds / requests completed,
   summed over the rounds (`Tally`); requests/s is over all rounds, the percentiles are the
   median round's, and each round is kept so the report can show how much rounds differ;
5. h2load at a fixed total rate (`rate` req/s over `RATE_CLIENTS` keep-alive HTTP/1.1
   connections, one request in flight per connection), `duration_s`: latency at a load every
   row sustains, from h2load's per-request log (exact percentiles);
6. three wrk runs at 64 connections, `mem_run_s` each, reading each proxy's RSS after each,
   and its RSS, PSS and private anonymous memory (/proc/PID/smaps_rollup) halfway through
   each, under the load;
7. rows with a soak target (the meshed pairs): the TLS handshake soak, `soak_count` new mTLS
   connections to the server-side proxy (`bench/soak.py`, one request each, at most `soak_s`
   seconds), in two halves (half the count and half the time each), with that proxy's memory
   read before, between the halves and after (each after a second's settle): growth per
   handshake shows in both halves alike, the allocator settling once in the first only.

The exec -> ready time of each proxy (`Child.ready_s`, certificate included for the meshed
ones) is recorded when the row starts.

Rows of the `h2` and `h2-tls` families take the same steps with h2load speaking HTTP/2 with
prior knowledge instead of wrk: `Env.h2_streams` streams in flight per connection (default
`H2_STREAMS`; one for the 1-connection run), percentiles from h2load's per-request log; they
have no fixed-rate step (their baseline is the HAProxy h2 pair of the family, and the
fixed-rate comparison is an HTTP/1 one).

Why h2load for the fixed rate: wrk has no rate control; h2load (Debian nghttp2-client) paces
each connection at --rps, is written in C so it stays cheap on the shared core, and logs every
request's duration in microseconds. hey's `-q` also paces, but it prints latencies in 0.1 ms
steps, too coarse for the tens of microseconds a hop adds. Neither corrects for coordinated
omission, so a fixed-rate row that fell behind its rate is flagged rather than trusted.

`measure_rows` takes every row with its processes already up (idle, so they cost nothing while
another row is measured) and runs the plan step by step across the rows: all rows' 1-connection
runs, then all rows' first 16-connection round, then all rows' second round, and so on. When
other work on the machine comes and goes during a run, it then spreads over every row instead
of hitting one, which keeps the ratios between rows honest. Load generators run on
`env.load_cpu` with one thread. Nothing here decides PASS/MISS; that is `report`'s job.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.parse import (
    MemSample,
    ParseError,
    WrkResult,
    parse_h2load,
    parse_h2load_log,
    parse_wrk,
    percentile,
)
from bench.procs import BenchError, Child, core_ticks, cpu_seconds, mem_sample, rss_mib, run_tool
from bench.profile import Profile, Syscalls
from bench.topology import Deployed, Env, SoakTarget

__all__ = [
    "RATE_CLIENTS",
    "FixedRate",
    "Plan",
    "RowResult",
    "SoakResult",
    "Step",
    "Tally",
    "measure_rows",
    "merge_rounds",
    "steps",
]

RATE_CLIENTS = 10
H2_STREAMS = 10  # streams in flight per connection in the h2 rows' multi-connection runs
SUSTAINED = 0.97  # achieved/asked rate below this means the row could not hold the rate


@dataclass(frozen=True)
class Plan:
    duration_s: float
    warmup_s: float
    mem_run_s: float
    rate: int
    settle_s: float = 1.0
    mem_runs: int = 3
    mem_connections: int = 64
    rounds: int = 3  # the 16-connection run is split into this many interleaved rounds
    profile_s: float = 3.0  # length of each extra profiling run
    soak_count: int = 50_000  # new TLS connections in the handshake soak
    soak_s: float = 480.0  # ... or this long, whichever comes first


@dataclass(frozen=True)
class FixedRate:
    asked_rps: int
    rps: float
    p50_us: float
    p99_us: float
    failed: int
    proxies_busy: float | None = None  # share of the proxies' core the row's proxies used
    core_busy: float | None = None  # share of that core busy with anything

    @property
    def sustained(self) -> bool:
        return self.failed == 0 and self.rps >= SUSTAINED * self.asked_rps


@dataclass
class Tally:
    """Sums over the 16-connection rounds, from which the per-request figures are derived."""

    requests: int = 0
    wall_s: float = 0.0
    used_s: list[float] = field(default_factory=list)  # per watched process (proxies, backend)
    user_s: list[float] = field(default_factory=list)
    core_ticks: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # busy/total x 2 cores


def merge_rounds(rounds: Sequence[WrkResult]) -> WrkResult:
    """One result for several wrk rounds: summed counts; the median round's percentiles."""
    requests = sum(r.requests for r in rounds)
    seconds = sum(r.seconds for r in rounds)

    def mid(values: list[float]) -> float:
        return sorted(values)[(len(values) - 1) // 2]

    return WrkResult(
        requests=requests,
        seconds=seconds,
        rps=requests / seconds if seconds > 0 else 0.0,
        p50_us=mid([r.p50_us for r in rounds]),
        p75_us=mid([r.p75_us for r in rounds]),
        p90_us=mid([r.p90_us for r in rounds]),
        p99_us=mid([r.p99_us for r in rounds]),
        errors=sum(r.errors for r in rounds),
    )


@dataclass(frozen=True)
class SoakResult:
    """The server-side proxy's memory around `handshakes` new mutual-TLS connections."""

    handshakes: int
    failed: int
    seconds: float
    before: MemSample
    after: MemSample
    server_cpu_s: float = 0.0  # the server-side proxy's utime+stime over the soak
    mid: MemSample | None = None  # between the two halves
    mid_handshakes: int = 0  # handshakes done by then (the first half's)


@dataclass
class RowResult:
    key: str
    label: str
    family: str
    error: str | None = None  # why the row has no figures (not available, or failed)
    c1: WrkResult | None = None
    c16: WrkResult | None = None  # the rounds merged (merge_rounds)
    c16_rounds: list[WrkResult] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally, repr=False)
    cpu_us_per_req: tuple[float, ...] = ()  # user+system, per proxy, client-side first
    user_us_per_req: tuple[float, ...] = ()  # the user-space part of it
    proxy_core_busy: float | None = None  # share of the proxies' core our proxies used (c16)
    core_busy_all: tuple[float, float] | None = None  # (load core, proxy core), any process
    backend_cpu_us_per_req: float | None = None
    fixed: FixedRate | None = None
    rss_idle_mib: tuple[float, ...] = ()
    rss_runs_mib: list[tuple[float, ...]] = field(default_factory=list)  # [run][proxy]
    mem_idle: tuple[MemSample, ...] = ()  # smaps_rollup per proxy, idle
    mem_loaded: list[tuple[MemSample, ...]] = field(default_factory=list)  # mid-run [run][proxy]
    startup_s: tuple[float | None, ...] = ()  # exec -> ready per proxy
    soak: SoakResult | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)  # proxy name -> py-spy summary
    syscalls: dict[str, Syscalls] = field(default_factory=dict)  # proxy name -> strace counts
    components: dict[str, dict[str, float]] = field(default_factory=dict)  # proxy -> perf shares

    @property
    def measured(self) -> bool:
        return self.error is None and self.c16 is not None


def _wrk(url: str, connections: int, seconds: float, env: Env) -> WrkResult:
    out = run_tool(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],
        cpu=env.load_cpu,
        timeout_s=seconds + 30,
    )
    result = parse_wrk(out)
    return result


def _h2load(url: str, clients: int, streams: int, seconds: float, env: Env) -> WrkResult:
    """A closed-loop HTTP/2 (h2c) run: `clients` connections x `streams` in flight each."""
    log = env.workdir / f"h2load-{clients}x{streams}-{time.monotonic_ns()}.log"  # one per run
    out = run_tool(
        [
            "h2load",
            f"--clients={clients}",
            f"--max-concurrent-streams={streams}",
            f"--duration={max(1, round(seconds))}",
            f"--log-file={log}",
            url,
        ],
        cpu=env.load_cpu,
        timeout_s=seconds + 30,
    )
    summary = parse_h2load(out)
    with log.open() as lines:
        durations = parse_h2load_log(lines)
    log.unlink()
    if not durations:
        raise BenchError(
            f"h2load (h2c, {clients}x{streams}) got no successful response "
            f"({summary.succeeded} succeeded, {summary.failed} failed)"
        )
    return WrkResult(
        requests=summary.succeeded,
        seconds=summary.seconds,
        rps=summary.rps,
        p50_us=percentile(durations, 50),
        p75_us=percentile(durations, 75),
        p90_us=percentile(durations, 90),
        p99_us=percentile(durations, 99),
        errors=summary.failed,
    )


def _load(result: RowResult, url: str, connections: int, seconds: float, env: Env) -> WrkResult:
    """wrk for HTTP/1 rows, h2load (h2c) for the h2 family."""
    if result.family.startswith("h2"):
        return _h2load(url, connections, env.h2_streams if connections > 1 else 1, seconds, env)
    return _wrk(url, connections, seconds, env)


def _fixed_rate(url: str, plan: Plan, env: Env, log: Path) -> FixedRate:
    per_client = plan.rate / RATE_CLIENTS
    out = run_tool(
        [
            "h2load",
            "--h1",
            f"--clients={RATE_CLIENTS}",
            "--max-concurrent-streams=1",
            f"--rps={per_client:g}",
            f"--duration={max(1, round(plan.duration_s))}",
            f"--log-file={log}",
            url,
        ],
        cpu=env.load_cpu,
        timeout_s=plan.duration_s + 30,
    )
    summary = parse_h2load(out)
    with log.open() as lines:
        durations = parse_h2load_log(lines)
    if not durations:
        raise BenchError(
            f"h2load at {plan.rate} req/s got no successful response "
            f"({summary.succeeded} succeeded, {summary.failed} failed)"
        )
    return FixedRate(
        asked_rps=plan.rate,
        rps=summary.rps,
        p50_us=percentile(durations, 50),
        p99_us=percentile(durations, 99),
        failed=summary.failed,
    )


def _rss(proxies: Sequence[Child]) -> tuple[float, ...]:
    return tuple(rss_mib(p.pid) for p in proxies)


def _mems(proxies: Sequence[Child]) -> tuple[MemSample, ...]:
    return tuple(mem_sample(p.pid) for p in proxies)


def _idle(result: RowResult, deployed: Deployed, plan: Plan, env: Env, backend: Child) -> None:
    result.rss_idle_mib = _rss(deployed.proxies)
    result.mem_idle = _mems(deployed.proxies)
    result.startup_s = tuple(p.ready_s for p in deployed.proxies)


def _warm(result: RowResult, deployed: Deployed, plan: Plan, env: Env, backend: Child) -> None:
    _load(result, deployed.url, 16, plan.warmup_s, env)


def _c1(result: RowResult, deployed: Deployed, plan: Plan, env: Env, backend: Child) -> None:
    result.c1 = _load(result, deployed.url, 1, plan.duration_s, env)


def _c16(result: RowResult, deployed: Deployed, plan: Plan, env: Env, backend: Child) -> None:
    """One round of the 16-connection run; the row's CPU figures cover all rounds so far."""
    proxies = deployed.proxies
    watched = [*proxies, backend]
    before = [cpu_seconds(p.pid) for p in watched]
    cores_before = (*core_ticks(env.load_cpu), *core_ticks(env.proxy_cpu))
    started = time.monotonic()
    wrk = _load(result, deployed.url, 16, plan.duration_s / plan.rounds, env)
    wall = time.monotonic() - started
    cores_after = (*core_ticks(env.load_cpu), *core_ticks(env.proxy_cpu))
    after = [cpu_seconds(p.pid) for p in watched]

    t = result.tally
    if not t.used_s:
        t.used_s, t.user_s = [0.0] * len(watched), [0.0] * len(watched)
    t.requests += wrk.requests
    t.wall_s += wall
    for i, (a, b) in enumerate(zip(after, before, strict=True)):
        t.used_s[i] += sum(a) - sum(b)
        t.user_s[i] += a[0] - b[0]
    t.core_ticks = [
        x + y - z for x, y, z in zip(t.core_ticks, cores_after, cores_before, strict=True)
    ]

    result.c16_rounds.append(wrk)
    result.c16 = merge_rounds(result.c16_rounds)
    requests = max(1, t.requests)
    n = len(proxies)
    result.cpu_us_per_req = tuple(u * 1e6 / requests for u in t.used_s[:n])
    result.user_us_per_req = tuple(u * 1e6 / requests for u in t.user_s[:n])
    if proxies:
        result.proxy_core_busy = sum(t.used_s[:n]) / t.wall_s
    result.backend_cpu_us_per_req = t.used_s[-1] * 1e6 / requests
    busy0, total0, busy1, total1 = t.core_ticks
    result.core_busy_all = (busy0 / max(1, total0), busy1 / max(1, total1))


def _fixed(result: RowResult, deployed: Deployed, plan: Plan, env: Env, backend: Child) -> None:
    """The fixed-rate run, and how busy the proxies' core was meanwhile (ours, and in all)."""
    if result.family.startswith("h2"):
        return
    log = env.workdir / f"h2load-{result.key}.log"
    before = [sum(cpu_seconds(p.pid)) for p in deployed.proxies]
    ticks_before, started = core_ticks(env.proxy_cpu), time.monotonic()
    fixed = _fixed_rate(deployed.url, plan, env, log)
    ticks_after, wall = core_ticks(env.proxy_cpu), time.monotonic() - started
    ours = sum(sum(cpu_seconds(p.pid)) - b for p, b in zip(deployed.proxies, before, strict=True))
    total = ticks_after[1] - ticks_before[1]
    result.fixed = replace(
        fixed,
        proxies_busy=ours / wall if deployed.proxies else None,
        core_busy=(ticks_after[0] - ticks_before[0]) / total if total > 0 else None,
    )


def _mem(result: RowResult, deployed: Deployed, plan: Plan, env: Env, backend: Child) -> None:
    if deployed.proxies:
        loaded: list[tuple[MemSample, ...]] = []

        def sample() -> None:
            try:
                loaded.append(_mems(deployed.proxies))
            except (BenchError, ParseError):
                pass  # the proxy died: check_alive after the step says so

        timer = threading.Timer(plan.mem_run_s / 2, sample)
        timer.start()
        try:
            _load(result, deployed.url, plan.mem_connections, plan.mem_run_s, env)
        finally:
            timer.cancel()
            timer.join()
        result.rss_runs_mib.append(_rss(deployed.proxies))
        if loaded:
            result.mem_loaded.append(loaded[0])


SOAK_CLIENT = Path(__file__).resolve().with_name("soak.py")


def _soak_half(target: SoakTarget, count: int, seconds: float, env: Env) -> tuple[int, int, float]:
    out = run_tool(
        [
            sys.executable,
            str(SOAK_CLIENT),
            f"--port={target.port}",
            f"--server-name={target.server_name}",
            f"--cert={target.cert}",
            f"--key={target.key}",
            f"--ca={target.ca}",
            f"--count={count}",
            f"--seconds={seconds:g}",
        ],
        cpu=env.load_cpu,
        timeout_s=seconds + 60,
    )
    words = out.split()
    try:
        return int(words[1]), int(words[3]), float(words[5])
    except (IndexError, ValueError):
        raise ParseError(f"soak client printed {out.strip()!r}") from None


def _soak(result: RowResult, deployed: Deployed, plan: Plan, env: Env, backend: Child) -> None:
    target = deployed.soak
    if target is None or not deployed.proxies or plan.soak_count <= 0:
        return
    server = deployed.proxies[-1]
    before = mem_sample(server.pid)
    cpu_before = sum(cpu_seconds(server.pid))
    first = plan.soak_count // 2
    done1, failed1, seconds1 = _soak_half(target, first, plan.soak_s / 2, env)
    time.sleep(1.0)
    mid = mem_sample(server.pid)
    done2, failed2, seconds2 = _soak_half(target, plan.soak_count - first, plan.soak_s / 2, env)
    cpu = sum(cpu_seconds(server.pid)) - cpu_before
    time.sleep(1.0)
    result.soak = SoakResult(
        done1 + done2,
        failed1 + failed2,
        seconds1 + seconds2,
        before,
        mem_sample(server.pid),
        cpu,
        mid,
        done1,
    )


Step = Callable[[RowResult, Deployed, Plan, Env, Child], None]


def steps(plan: Plan) -> list[tuple[str, Step]]:
    """The plan as data: (name, step) in the order every row goes through them."""
    return [
        ("idle RSS", _idle),
        ("warm-up", _warm),
        ("wrk, 1 connection", _c1),
        *[(f"wrk, 16 connections, round {i + 1}/{plan.rounds}", _c16) for i in range(plan.rounds)],
        (f"fixed rate {plan.rate:,} req/s", _fixed),
        *[
            (f"wrk, {plan.mem_connections} connections, run {i + 1}", _mem)
            for i in range(plan.mem_runs)
        ],
        ("TLS handshake soak", _soak),
    ]


def measure_rows(
    rows: Sequence[tuple[RowResult, Deployed]],
    plan: Plan,
    env: Env,
    backend: Child,
    on_failure: Callable[[RowResult, Deployed], None],
) -> None:
    """Run every step for every row, step by step (see the module docstring).

    A row whose step fails (a tool error, a proxy that died) gets `error` set, is handed to
    `on_failure` (which stops its processes) and skips the remaining steps; the others go on.
    """
    time.sleep(plan.settle_s)
    live = list(rows)
    for name, step in steps(plan):
        for result, deployed in list(live):
            try:
                step(result, deployed, plan, env, backend)
                for child in (*deployed.proxies, backend):
                    child.check_alive()
            except (BenchError, ParseError) as exc:
                result.error = f"{name}: {exc}"
                live.remove((result, deployed))
                on_failure(result, deployed)
