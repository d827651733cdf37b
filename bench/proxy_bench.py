"""Benchmark the lacewing proxy pair against direct traffic and an HAProxy pair, in one run.

    python bench/proxy_bench.py [--quick] [--duration S] [--rate N] [--rows a,b]
                                [--profile auto|always|never] [--out FILE]
                                [--soak N] [--soak-seconds S]
                                [--baseline OTHER-CHECKOUT/.venv/bin/lacewing]

How a run goes: a temporary directory is made; the backend (nginx `return 200 "ok"`) starts
pinned to the load core; every row of `topology.ROWS` starts its processes (proxies pinned to
the other core) and waits, idle; `runner.measure_rows` then takes all rows through the plan
step by step, one load generator at a time, so rows never run at the same moment but share
whatever else the machine is doing. When a target is missed (or with --profile always) the
lacewing rows then get an extra run under py-spy, so the report says where the time goes.
The report (`report.render`) is written to `bench/results/<date>-<host>.md` (or --out) and
printed. Every process is started by `procs.Supervisor` and stopped by PID when the run ends,
fails, or is interrupted.

Errors the user can fix (a missing tool, a bad option) print one line and a hint; a row that
cannot run (for example `lacewing proxy` not in this checkout) is reported as not measured and
the other rows still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/proxy_bench.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import footprint
from bench import routes as route_rows
from bench.parse import ParseError
from bench.procs import BenchError, Supervisor, install_sigterm_handler
from bench.profile import count_syscalls, cpu_by_component, profile_proxies, py_spy
from bench.report import TARGETS, Run, findings, render
from bench.runner import Plan, RowResult, measure_rows
from bench.topology import ROWS as PAIR_ROWS
from bench.topology import Deployed, Env, start_backend

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
ROWS = (*PAIR_ROWS, *route_rows.ROWS)  # the route rows: bench/routes.py (issue 12)
REQUIRED_TOOLS = {
    "wrk": "apt-get install wrk",
    "h2load": "apt-get install nghttp2-client",
    "taskset": "apt-get install util-linux",
}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="proxy_bench.py",
        description="Compare direct traffic, the lacewing proxy pair and an HAProxy pair.",
    )
    parser.add_argument("--quick", action="store_true", help="2 s runs: under a minute in all")
    parser.add_argument("--duration", type=float, help="seconds per measured run (default 10)")
    parser.add_argument("--rate", type=int, default=5000, help="fixed rate, req/s (default 5000)")
    parser.add_argument(
        "--rows", help=f"comma-separated rows to run (default all): {','.join(r.key for r in ROWS)}"
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        help="profile the proxies (py-spy, perf, strace) in extra 16-connection runs: auto "
        "(the default) does it when a target is missed; --quick defaults to never",
    )
    parser.add_argument("--out", type=Path, help="report path (default bench/results/DATE-HOST.md)")
    parser.add_argument(
        "--soak",
        type=int,
        help="new mTLS connections in the handshake soak (default 50000, --quick 2000; 0: none)",
    )
    parser.add_argument(
        "--h2-streams",
        type=int,
        default=10,
        help="streams in flight per connection in the HTTP/2 rows' 16-connection runs "
        "(default 10; 1: the same 16 requests in flight as the HTTP/1 rows)",
    )
    parser.add_argument(
        "--soak-seconds",
        type=float,
        help="time cap of each handshake soak (default 480, --quick 30)",
    )
    parser.add_argument(
        "--baseline",
        help="another checkout's `lacewing` entry point: adds the -base rows (same pairs from "
        "that tree, in the same run)",
    )
    args = parser.parse_args(argv)
    if args.baseline is not None and not os.access(args.baseline, os.X_OK):
        parser.error(f"--baseline {args.baseline}: not an executable")
    if not 1 <= args.h2_streams <= 100:
        parser.error("--h2-streams must be between 1 and 100")
    if args.soak is not None and not 0 <= args.soak <= 1_000_000:
        parser.error("--soak must be between 0 and 1000000")
    if args.soak_seconds is not None and not 1 <= args.soak_seconds <= 3600:
        parser.error("--soak-seconds must be between 1 and 3600")
    if args.profile is None:
        args.profile = "never" if args.quick else "auto"
    if args.duration is not None and not 1 <= args.duration <= 120:
        parser.error("--duration must be between 1 and 120 seconds")
    if not 10 <= args.rate <= 1_000_000:
        parser.error("--rate must be between 10 and 1000000 requests/s")
    if args.rows:
        known = {r.key for r in ROWS}
        unknown = sorted(set(args.rows.split(",")) - known)
        if unknown:
            parser.error(
                f"unknown row(s) {', '.join(unknown)}; rows are {', '.join(sorted(known))}"
            )
    return args


def _plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(
            duration_s=args.duration or 2.0,
            warmup_s=1.0,
            mem_run_s=1.0,
            rate=args.rate,
            settle_s=0.5,
            rounds=2,
            profile_s=1.0,
            soak_count=2_000 if args.soak is None else args.soak,
            soak_s=args.soak_seconds or 30.0,
        )
    d = args.duration or 10.0
    return Plan(
        duration_s=d,
        warmup_s=2.0,
        mem_run_s=min(3.0, d),
        rate=args.rate,
        soak_count=50_000 if args.soak is None else args.soak,
        soak_s=args.soak_seconds or Plan.soak_s,
    )


def compile_lacewing() -> str:
    """Compile this checkout's `lacewing` package to .pyc first, as the image ships it.

    Without .pyc files a proxy compiles every module from source at each start: 0.7 MiB
    more private memory for life and a slower start-up (bench/levers.py `nopyc`); with
    PYTHONDONTWRITEBYTECODE set, as on these machines, every start does it again. Returns
    the report's setup line."""
    import compileall

    import lacewing

    tree = Path(lacewing.__file__).resolve().parent
    ok = compileall.compile_dir(str(tree), quiet=1)
    return (
        f"The proxies run from .pyc compiled before the run ({tree}), as the image ships them"
        + ("." if ok else "; some modules did not compile, and compile at each start.")
    )


def _cpus() -> tuple[int, int, str | None]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        return cpus[0], cpus[1], None
    return cpus[0], cpus[0], "only one CPU available: load generator, backend and proxies share it"


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _pkg(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _machine(backend: str) -> list[tuple[str, str]]:
    repo = Path(__file__).resolve().parent.parent
    commit = _first_line(["git", "-C", str(repo), "describe", "--always", "--dirty"])
    return [
        ("host", socket.gethostname()),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores"),
        ("OS / kernel", f"{_os_name()} / {platform.release()}"),
        ("load average at start", " ".join(f"{v:.2f}" for v in os.getloadavg())),
        (
            "Python",
            f"{platform.python_version()} (uvloop {_pkg('uvloop')}, httptools {_pkg('httptools')})",
        ),
        ("lacewing", f"{_pkg('lacewing')} at {commit}"),
        ("HAProxy", _first_line(["haproxy", "-v"])),
        ("wrk", _first_line(["wrk", "--version"]).split(" Copyright")[0]),
        ("h2load", _first_line(["h2load", "--version"])),
        ("backend", backend),
    ]


FOREIGN_NOTE_SHARE = 0.10  # other work above this share of the proxies' core is worth a note


def _noise_notes(run: Run) -> list[str]:
    """Say how much of the proxies' core other processes took during the 16-connection runs."""
    foreign = {
        r.label: r.core_busy_all[1] - r.proxy_core_busy
        for r in run.rows.values()
        if r.measured and r.core_busy_all is not None and r.proxy_core_busy is not None
    }
    busy = {label: share for label, share in foreign.items() if share > FOREIGN_NOTE_SHARE}
    if not busy:
        return []
    shares = ", ".join(f"{label} {100 * share:.0f}%" for label, share in busy.items())
    return [
        "Other processes on this machine used part of the proxies' core during the "
        f"16-connection runs ({shares}); absolute figures are lower than on a quiet machine, "
        "and ratios are only as steady as that load was."
    ]


def _profile(
    run: Run, deployed: list[tuple[RowResult, Deployed]], sup: Supervisor, plan: Plan, cpu: int
) -> None:
    """py-spy on the lacewing proxies; perf and strace on every pair's proxies (HAProxy too)."""
    if py_spy() is None:
        run.notes.append("No CPU profile: py-spy is not installed (pip install py-spy).")
    if shutil.which("perf") is None:
        run.notes.append("No CPU split by component: perf is not installed (linux-perf).")
    if shutil.which("strace") is None:
        run.notes.append("No system call counts: strace is not installed (apt-get install strace).")
    for result, row in deployed:
        if result.error is not None or not row.proxies:
            continue
        h2 = result.family.startswith("h2")  # h2load, not wrk
        args = (sup, row.proxies, row.url, plan.profile_s, cpu, h2)
        try:
            if result.key.startswith("lacewing") and py_spy() is not None:
                print(f"-- {result.label}: profiling with py-spy", file=sys.stderr)
                result.profiles = profile_proxies(*args)
            print(f"-- {result.label}: sampling with perf", file=sys.stderr)
            result.components = cpu_by_component(*args)
            print(f"-- {result.label}: counting system calls with strace", file=sys.stderr)
            result.syscalls = count_syscalls(*args)
        except (BenchError, ParseError) as exc:
            run.notes.append(f"Profiling {result.label} failed: {exc}")


def _estimate_s(plan: Plan, rows: int) -> float:
    per_row = plan.warmup_s + 3 * plan.duration_s + plan.mem_runs * plan.mem_run_s
    return plan.settle_s + rows * (per_row + 1.0)


def _setup(plan: Plan, load_cpu: int, proxy_cpu: int, h2_streams: int = 10) -> list[str]:
    return [
        f"Everything on loopback. Load generator and backend pinned to CPU {load_cpu}, "
        f"both proxies of a pair to CPU {proxy_cpu} (taskset).",
        "Each pair is two processes, client-side (outbound) then server-side (inbound), "
        "HTTP/1.1 keep-alive end to end; HAProxy runs `nbthread 1`, `http-reuse always`; the "
        "TLS pairs do mutual TLS between the two proxies.",
        f"wrk -t1, 1 and 16 connections, {plan.duration_s:g} s each after a "
        f"{plan.warmup_s:g} s warm-up (the 16-connection run in {plan.rounds} rounds); fixed "
        f"rate {plan.rate:,} req/s for {plan.duration_s:g} s with h2load (wrk cannot hold a "
        "rate; h2load paces each connection and logs every request in microseconds).",
        "HTTP/2 rows: h2load with prior knowledge (h2c) from the client and to the backend "
        f"(nginx `http2`), 1 connection x 1 stream and 16 connections x {h2_streams} streams; "
        "the `over mTLS` rows carry HTTP/2 inside mutual TLS (ALPN h2) between the proxies.",
        f"Memory: VmRSS idle, then after each of {plan.mem_runs} wrk runs at "
        f"{plan.mem_connections} connections ({plan.mem_run_s:g} s each); RSS, PSS and private "
        "anonymous memory from /proc/PID/smaps_rollup idle and halfway through each of those "
        "runs.",
        f"TLS handshake soak (meshed rows): up to {plan.soak_count:,} new mTLS connections "
        f"to the server-side proxy, at most {plan.soak_s:g} s, in two halves, memory before, "
        "between and after.",
        "CPU per request: each proxy's utime+stime delta over the 16-connection rounds "
        "divided by the requests wrk completed.",
        "All rows are up for the whole run and measured step by step in turn (every row's "
        "1-connection run, then every row's first 16-connection round, ...), so load from "
        "other work on the machine spreads over all rows.",
        "Figures move with other load on this machine: compare ratios within this report, "
        "not absolute figures across reports.",
    ]


def _deploy(
    run: Run, wanted: set[str], sup: Supervisor, env: Env
) -> list[tuple[RowResult, Deployed]]:
    """Start every wanted row that can run here; the others are recorded as not measured."""
    deployed: list[tuple[RowResult, Deployed]] = []
    for spec in ROWS:
        if spec.key not in wanted:
            continue
        result = RowResult(spec.key, spec.label, spec.family)
        run.rows[spec.key] = result
        reason = spec.missing()
        if reason is None:
            already = len(sup.children)
            try:
                deployed.append((result, spec.start(sup, env)))
                continue
            except (BenchError, ParseError) as exc:
                reason = f"did not start: {exc}"
                for child in list(sup.children[already:]):
                    sup.stop(child)
        result.error = reason
        print(f"-- {spec.label}: not measured ({reason})", file=sys.stderr)
    return deployed


def execute(args: argparse.Namespace) -> Run:
    for tool, hint in REQUIRED_TOOLS.items():
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed", hint=hint)
    plan = _plan(args)
    load_cpu, proxy_cpu, cpu_note = _cpus()
    compiled = compile_lacewing()
    every = {r.key for r in ROWS if args.baseline or not r.key.endswith("-base")}
    wanted = set(args.rows.split(",")) | {"direct"} if args.rows else every
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="lwb-") as tmp, Supervisor(Path(tmp)) as sup:
        env = Env(workdir=Path(tmp), load_cpu=load_cpu, proxy_cpu=proxy_cpu,
                  baseline=args.baseline, h2_streams=args.h2_streams)  # fmt: skip
        backend_version = start_backend(sup, env)
        backend = sup.children[-1]
        run = Run(
            title=f"lacewing proxy benchmark, {started:%Y-%m-%d %H:%M} UTC",
            machine=_machine(backend_version),
            setup=_setup(plan, load_cpu, proxy_cpu, args.h2_streams)
            + [compiled]
            + ([cpu_note] if cpu_note else []),
        )
        deployed = _deploy(run, wanted, sup, env)

        def failed(result: RowResult, row: Deployed) -> None:
            print(f"-- {result.label}: failed: {result.error}", file=sys.stderr)
            for child in row.proxies:
                sup.stop(child)

        print(
            f"-- measuring {', '.join(r.label for r, _ in deployed)} "
            f"(about {_estimate_s(plan, len(deployed)):.0f} s)",
            file=sys.stderr,
        )
        measure_rows(deployed, plan, env, backend, failed)
        missed = any(t.check(run).status == "MISS" for t in TARGETS)
        if args.profile == "always" or (args.profile == "auto" and missed):
            _profile(run, deployed, sup, plan, load_cpu)
    run.notes += _noise_notes(run)
    run.notes += [
        f"MISS: {t.text}: {v.figure}."
        for t in (*TARGETS, *footprint.TARGETS, *route_rows.TARGETS)
        for v in [t.check(run)]
        if v.status == "MISS"
    ]
    run.notes += findings(run)
    if args.profile == "never" and any(n.startswith("MISS") for n in run.notes):
        run.notes.append(
            "No profile was taken: run with --profile always to see where the time goes."
        )
    return run


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    install_sigterm_handler()
    try:
        run = execute(args)
    except BenchError as exc:
        hint = f" (hint: {exc.hint})" if exc.hint else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: every process the benchmark started has been stopped", file=sys.stderr)
        return 130
    text = render(run, footprint.render(run) + route_rows.render(run))
    out = args.out or RESULTS / f"{dt.date.today():%Y-%m-%d}-{socket.gethostname()}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(text)
    print(f"\nreport written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
