"""Memory levers of one lacewing pair, A/B in one sitting: interpreter flags, allocator settings.

    python bench/levers.py --row lacewing-mtls --variants console,pyc,arena1 --rounds 2
    python bench/levers.py --row lacewing-mtls --variants pyc --soak-steps 10000x10

Each variant is a way of starting `lacewing proxy` (`VARIANTS`: interpreter flags and
environment variables, run through a small wrapper script as the pair's `exe`). For every
round, every variant in turn (so whatever else runs on the machine spreads over all of them)
gets a fresh pair from `bench/topology.py` (the same start functions as the benchmark), and:

1. memory idle (RSS, PSS, private = `Anonymous:` from /proc/PID/smaps_rollup), 1 s after ready;
2. wrk warm-up, then wrk -c16 for `--seconds`: requests/s and each proxy's CPU per request;
3. two wrk -c64 runs of 3 s with memory sampled halfway (the benchmark's "loaded" figure);
4. with `--soak-steps NxK` (meshed row only): K rounds of N new mTLS connections to the
   server-side proxy (`bench/soak.py`), its memory after each round, so a plateau (allocator
   settling) and growth per handshake can be told apart.

It prints one markdown table per measurement. CPU figures move with other load on the
machine (the load average is printed); memory figures barely do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.parse import MemSample, ParseError
from bench.procs import (
    BenchError,
    Supervisor,
    cpu_seconds,
    install_sigterm_handler,
    mem_sample,
    run_tool,
)
from bench.runner import SOAK_CLIENT, _wrk
from bench.topology import Deployed, Env, start_backend, start_lacewing, start_lacewing_mtls

_PATH = ":".join(p for p in sys.path[1:] if p)  # for -S, which skips site (and the venv's .pth)


@dataclass(frozen=True)
class Variant:
    flags: tuple[str, ...] = ()  # interpreter flags before `-m lacewing.proxy`
    env: tuple[tuple[str, str], ...] = ()
    console: bool = False  # the `lacewing proxy` console script instead of `python -m`
    pyc: bool = True  # run with the source tree compiled to .pyc (as the image is)


VARIANTS: dict[str, Variant] = {
    "console": Variant(console=True),
    "nopyc": Variant(console=True, pyc=False),
    "pyc": Variant(),
    "OO": Variant(flags=("-OO",)),
    "S": Variant(flags=("-S",), env=(("PYTHONPATH", _PATH),)),
    "I": Variant(flags=("-I",)),
    "frozen-off": Variant(flags=("-X", "frozen_modules=off")),
    "pymalloc-off": Variant(env=(("PYTHONMALLOC", "malloc"),)),
    "arena1": Variant(env=(("MALLOC_ARENA_MAX", "1"),)),
    "arena2": Variant(env=(("MALLOC_ARENA_MAX", "2"),)),
    "trim64k": Variant(env=(("MALLOC_TRIM_THRESHOLD_", "65536"),)),
    "arena1-trim64k": Variant(env=(("MALLOC_ARENA_MAX", "1"), ("MALLOC_TRIM_THRESHOLD_", "65536"))),
    "mmap64k": Variant(env=(("MALLOC_MMAP_THRESHOLD_", "65536"),)),
    "uv1": Variant(env=(("UV_THREADPOOL_SIZE", "1"),)),
}


@dataclass
class Result:
    idle: list[tuple[MemSample, ...]] = field(default_factory=list)
    loaded: list[tuple[MemSample, ...]] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    cpu_us: list[tuple[float, ...]] = field(default_factory=list)
    soak: list[list[tuple[int, MemSample]]] = field(default_factory=list)


def _wrapper(workdir: Path, name: str, variant: Variant) -> str | None:
    if variant.console and not variant.env and not variant.flags:
        return None  # the benchmark's own `lacewing` beside this interpreter
    path = workdir / f"launch-{name}"
    env = " ".join(f"{k}={v}" for k, v in variant.env)
    if variant.console:
        command = str(Path(sys.executable).with_name("lacewing")) + " proxy"
    else:
        command = " ".join([sys.executable, *variant.flags, "-m", "lacewing.proxy"])
    path.write_text(f"#!/bin/sh\nexec env {env} {command}\n")
    path.chmod(0o755)
    return str(path)


def _src() -> Path:
    return Path(__file__).resolve().parent.parent / "src" / "lacewing"


def _compile(tree: Path) -> None:
    import compileall

    for level in (0, 2):  # (2: the .opt-2.pyc that -OO reads)
        compileall.compile_dir(str(tree), quiet=1, optimize=level)


def _set_pyc(compiled: bool) -> None:
    """Compile the source tree to .pyc (as the image ships it), or remove the .pyc files."""
    if compiled:
        _compile(_src())
    else:
        for cache in _src().rglob("__pycache__"):
            shutil.rmtree(cache)


def _mems(d: Deployed) -> tuple[MemSample, ...]:
    return tuple(mem_sample(p.pid) for p in d.proxies)


def _measure(d: Deployed, env: Env, args: argparse.Namespace, out: Result) -> None:
    time.sleep(1.0)
    out.idle.append(_mems(d))
    _wrk(d.url, 16, 2, env)
    before = [sum(cpu_seconds(p.pid)) for p in d.proxies]
    run = _wrk(d.url, 16, args.seconds, env)
    spent = [sum(cpu_seconds(p.pid)) - b for p, b in zip(d.proxies, before, strict=True)]
    out.rps.append(run.rps)
    out.cpu_us.append(tuple(s / (run.rps * args.seconds) * 1e6 for s in spent))
    worst: tuple[MemSample, ...] | None = None
    for _ in range(2):
        got: list[tuple[MemSample, ...]] = []
        timer = threading.Timer(1.5, lambda sink=got: sink.append(_mems(d)))
        timer.start()
        _wrk(d.url, 64, 3, env)
        timer.join()
        if got and (worst is None or got[0][0].rss + got[0][1].rss > worst[0].rss + worst[1].rss):
            worst = got[0]
    if worst is not None:
        out.loaded.append(worst)
    if args.soak_steps and d.soak is not None:
        count, steps = (int(x) for x in args.soak_steps.split("x"))
        server = d.proxies[-1]
        trace = [(0, mem_sample(server.pid))]
        done = 0
        for _ in range(steps):
            t = d.soak
            line = run_tool(
                [sys.executable, str(SOAK_CLIENT), f"--port={t.port}",
                 f"--server-name={t.server_name}", f"--cert={t.cert}", f"--key={t.key}",
                 f"--ca={t.ca}", f"--count={count}", "--seconds=300"],
                cpu=env.load_cpu, timeout_s=360,
            )  # fmt: skip
            done += int(line.split()[1])
            time.sleep(1.0)
            trace.append((done, mem_sample(server.pid)))
        out.soak.append(trace)


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" + (
        f" ({min(values):.1f}-{max(values):.1f})" if len(values) > 1 else ""
    )


def _report(row: str, results: dict[str, Result]) -> None:
    sides = ("client", "server")
    print(f"\n### {row}: memory (MiB, median of rounds, range), CPU us/request at c16\n")
    print("| variant | side | idle RSS | idle private | loaded RSS | loaded PSS | loaded private "
          "| CPU us/req | req/s c16 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        for i, side in enumerate(sides):
            print(
                f"| {name} | {side} | {_fmt([m[i].rss for m in r.idle])} "
                f"| {_fmt([m[i].anon for m in r.idle])} | {_fmt([m[i].rss for m in r.loaded])} "
                f"| {_fmt([m[i].pss for m in r.loaded])} | {_fmt([m[i].anon for m in r.loaded])} "
                f"| {_fmt([c[i] for c in r.cpu_us])} | {_fmt(r.rps) if i == 0 else ''} |"
            )
    for name, r in results.items():
        for n, trace in enumerate(r.soak):
            print(f"\nsoak {name} round {n + 1} (server-side, handshakes: RSS / private MiB):")
            print(", ".join(f"{k:,}: {m.rss:.1f} / {m.anon:.1f}" for k, m in trace))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="levers.py", description=__doc__.splitlines()[0])
    parser.add_argument("--row", choices=("lacewing", "lacewing-mtls"), default="lacewing-mtls")
    parser.add_argument("--variants", default="console,pyc", help=",".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--soak-steps", default="", help="NxK: K soak rounds of N handshakes")
    parser.add_argument(
        "--base-src",
        help="another tree's src/ (e.g. a `git worktree` of main): adds the variant `base`, "
        "this interpreter running that tree's proxy (compiled to .pyc as well)",
    )
    args = parser.parse_args(argv)
    if args.base_src:
        VARIANTS["base"] = Variant(env=(("PYTHONPATH", args.base_src),))
        _compile(Path(args.base_src))
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print(f"unknown variant(s): {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
        return 2
    install_sigterm_handler()
    start = start_lacewing_mtls if args.row == "lacewing-mtls" else start_lacewing
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = {n: Result() for n in names}
    with tempfile.TemporaryDirectory(prefix="lacewing-levers-") as tmp:
        for r in range(args.rounds):
            for name in names:
                variant = VARIANTS[name]
                _set_pyc(variant.pyc)
                work = Path(tmp) / f"{name}-{r}"
                work.mkdir()
                env = Env(work, load_cpu=0, proxy_cpu=1)
                try:
                    with Supervisor(work) as sup:
                        start_backend(sup, env)
                        exe = _wrapper(work, name, variant)
                        d = start(sup, env, exe=exe)
                        _measure(d, env, args, results[name])
                except (BenchError, ParseError) as exc:
                    print(f"round {r + 1} {name} failed: {exc}", file=sys.stderr)
                    results.pop(name, None)
                    names = [n for n in names if n != name]
                    continue
                print(f"round {r + 1} {name} done", file=sys.stderr)
        _set_pyc(True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    _report(args.row, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
