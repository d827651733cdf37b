"""Where a Python proxy spends its CPU: py-spy samples during an extra load run.

`profile_proxies` attaches `py-spy record --format raw --nonblocking` to each proxy process of
a row while wrk drives 16 connections through the pair (h2load, h2c, 16 connections x 10
streams for an HTTP/2 row: `load_argv`) (an extra run, after the measured ones,
because sampling costs the proxies time). py-spy's raw format is one collapsed stack per line,
`frame;frame;...;leaf count`, each frame `function (file:line)`; idle threads are left out, so
every sample is time spent working. `summarize` turns that into the functions with the most
self time (the leaf frame) and the most inclusive time (anywhere in the stack), as shares of
all samples.

`count_syscalls` does the same with `strace -c -f` attached to every proxy of a row, HAProxy's
included, during a short wrk run: system calls per request, grouped as `SYSCALL_GROUPS` says.
It shows what the CPU profile cannot: a proxy that writes a response in two calls instead of
one, or wakes up once per request instead of once per batch, pays for it in the kernel, which
is most of a hop's cost on loopback. strace slows the proxies down a lot, so only the counts
are used, never the times.

`cpu_by_component` samples each proxy with `perf record` (software cpu-clock, so it works in a
VM) and groups the shared objects the samples fall in by `COMPONENTS`: the kernel, the Python
interpreter, httptools, uvloop, HAProxy itself, OpenSSL, libc. Shares times the measured CPU
per request give microseconds per request per component: the kernel's part is the floor every
proxy pays; the rest is the proxy's own.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.parse import parse_h2load, parse_perf_dso, parse_strace_summary, parse_wrk
from bench.procs import BenchError, Child, Supervisor, run_tool

__all__ = [
    "COMPONENTS",
    "ENTRY_SHARE",
    "H2_LOAD",
    "LOOP_FRAMES",
    "SYSCALL_GROUPS",
    "Hotspot",
    "Profile",
    "Syscalls",
    "components",
    "count_syscalls",
    "cpu_by_component",
    "load_argv",
    "profile_proxies",
    "py_spy",
    "summarize",
]


@dataclass(frozen=True)
class Hotspot:
    share: float  # of all samples, 0..1
    function: str  # "name (file:line)" with the file shortened to its last two parts


@dataclass(frozen=True)
class Profile:
    samples: int
    self_time: tuple[Hotspot, ...]
    inclusive: tuple[Hotspot, ...]


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


ENTRY_SHARE = 0.95
# The innermost Python frame of time spent in uvloop's C code and in the kernel's socket
# calls is the frame that started the loop; the report names it as such.
LOOP_FRAMES = ("Runner.run (asyncio/runners.py)", "run (asyncio/runners.py)")

_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


def _short(frame: str) -> str:
    """'on_body (/x/y/lacewing/proxy/http1/server.py:210)' -> 'on_body (http1/server.py)'."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    file = "/".join(match.group("file").split("/")[-2:])
    return f"{match.group('name')} ({file})"


def summarize(lines: Iterable[str], top: int = 10) -> Profile:
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        self_counts["event loop: uvloop C code + syscalls" if leaf in LOOP_FRAMES else leaf] += (
            count
        )
        for name in set(frames):
            incl_counts[name] += count
    if total == 0:
        return Profile(0, (), ())

    def ranked(counter: Counter[str]) -> tuple[Hotspot, ...]:
        return tuple(Hotspot(n / total, name) for name, n in counter.most_common(top))

    # Frames on (nearly) every stack are the entry points (main, click, asyncio.run): they say
    # nothing about where the time goes, so the inclusive list leaves them out.
    for name in [n for n, c in incl_counts.items() if c >= ENTRY_SHARE * total]:
        del incl_counts[name]
    return Profile(total, ranked(self_counts), ranked(incl_counts))


H2_LOAD = (16, 10)  # connections x streams each, as the h2 rows' closed-loop runs


def load_argv(url: str, seconds: float, h2: bool = False, latency: bool = False) -> list[str]:
    """The load of a profiling run: wrk at 16 connections, or for an HTTP/2 row h2load (h2c)
    at 16 connections x 10 streams, as that row's measured runs."""
    duration = max(1, round(seconds))
    if h2:
        clients, streams = H2_LOAD
        return ["h2load", f"--clients={clients}", f"--max-concurrent-streams={streams}",
                f"--duration={duration}", url]  # fmt: skip
    return ["wrk", "-t1", "-c16", f"-d{duration}s", *(["--latency"] if latency else []), url]


def _requests(out: str, h2: bool) -> int:
    return parse_h2load(out).succeeded if h2 else parse_wrk(out).requests


def profile_proxies(
    sup: Supervisor, proxies: tuple[Child, ...], url: str, seconds: float, cpu: int,
    h2: bool = False,
) -> dict[str, Profile]:  # fmt: skip
    """Sample each proxy while the load runs; {proxy name: Profile}."""
    tool = py_spy()
    if tool is None:
        return {}
    recorders = []
    for proxy in proxies:
        out = sup.workdir / f"py-spy-{proxy.name}.txt"
        argv = [
            tool,
            "record",
            "--pid",
            str(proxy.pid),
            "--format",
            "raw",
            "--nonblocking",
            "--rate",
            "250",
            "--duration",
            str(max(1, round(seconds))),
            "--output",
            str(out),
        ]
        recorders.append((proxy, out, sup.start(f"py-spy-{proxy.name}", argv, cpu=cpu)))
    run_tool(load_argv(url, seconds, h2), cpu=cpu, timeout_s=seconds + 30)
    profiles: dict[str, Profile] = {}
    for proxy, out, recorder in recorders:
        with contextlib.suppress(subprocess.TimeoutExpired):
            recorder.popen.wait(timeout=seconds + 15)
        sup.stop(recorder)  # by PID; a recorder that hung is killed and its profile left out
        if out.exists():
            with out.open() as lines:
                profiles[proxy.name] = summarize(lines)
    return profiles


SYSCALL_GROUPS: dict[str, tuple[str, ...]] = {
    "writes": ("write", "writev", "sendto", "sendmsg", "sendmmsg"),
    "reads": ("read", "readv", "recvfrom", "recvmsg", "recvmmsg"),
    "polls": ("epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "select", "ppoll"),
}


@dataclass(frozen=True)
class Syscalls:
    requests: int
    calls: Mapping[str, int]

    def per_request(self, group: str | None = None) -> float:
        """Calls per request of one group of SYSCALL_GROUPS, or of every syscall (None)."""
        names = SYSCALL_GROUPS[group] if group else tuple(self.calls)
        return sum(self.calls.get(n, 0) for n in names) / max(1, self.requests)


def count_syscalls(
    sup: Supervisor, proxies: tuple[Child, ...], url: str, seconds: float, cpu: int,
    h2: bool = False,
) -> dict[str, Syscalls]:  # fmt: skip
    """Attach strace -c to each proxy while the load runs; {proxy name: Syscalls}."""
    tool = shutil.which("strace")
    if tool is None or not proxies:
        return {}
    tracers = []
    for proxy in proxies:
        out = sup.workdir / f"strace-{proxy.name}.txt"
        argv = [tool, "-c", "-f", "-p", str(proxy.pid), "-o", str(out)]
        tracers.append((proxy, out, sup.start(f"strace-{proxy.name}", argv, cpu=cpu)))
    deadline = time.monotonic() + 10
    for _, _, tracer in tracers:
        while "attached" not in tracer.log.read_text(errors="replace"):
            tracer.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{tracer.name} did not attach", hint=f"see {tracer.log}")
            time.sleep(0.05)
    try:
        requests = _requests(
            run_tool(load_argv(url, seconds, h2, latency=True), cpu=cpu, timeout_s=seconds + 30),
            h2,
        )
    finally:
        for _, _, tracer in tracers:
            with contextlib.suppress(ProcessLookupError):
                tracer.popen.send_signal(signal.SIGINT)  # strace detaches and writes -o
            with contextlib.suppress(subprocess.TimeoutExpired):
                tracer.popen.wait(timeout=10)
            sup.stop(tracer)
    counts: dict[str, Syscalls] = {}
    for proxy, out, _ in tracers:
        if out.exists():
            counts[proxy.name] = Syscalls(requests, parse_strace_summary(out.read_text()))
    return counts


# (component, substrings of the shared object's name); the first match wins.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kernel", ("[kernel", "[vdso]")),
    ("Python interpreter", ("libpython", "python3")),
    ("httptools (llhttp)", ("httptools", "parser.cpython")),
    ("uvloop (libuv)", ("uvloop", "loop.cpython")),
    ("OpenSSL", ("libssl", "libcrypto", "_ssl.cpython")),
    ("HAProxy", ("haproxy",)),
    ("libc", ("libc.so", "libc-", "ld-linux")),
)


def components(shares: Mapping[str, float]) -> dict[str, float]:
    """Group perf's {shared object: share} into {component: share}; the rest is 'other'."""
    out: dict[str, float] = {}
    for dso, share in shares.items():
        name = next((c for c, keys in COMPONENTS if any(k in dso for k in keys)), "other")
        out[name] = out.get(name, 0.0) + share
    return out


def cpu_by_component(
    sup: Supervisor, proxies: tuple[Child, ...], url: str, seconds: float, cpu: int,
    h2: bool = False,
) -> dict[str, dict[str, float]]:  # fmt: skip
    """perf-sample each proxy while the load runs; {proxy name: {component: share}}."""
    tool = shutil.which("perf")
    if tool is None or not proxies:
        return {}
    duration = max(1, round(seconds))
    recorders = []
    for proxy in proxies:
        out = sup.workdir / f"perf-{proxy.name}.data"
        argv = [
            tool,
            "record",
            "-F",
            "999",
            "-p",
            str(proxy.pid),
            "-o",
            str(out),
            "--",
            "sleep",
            str(duration),
        ]
        recorders.append((proxy, out, sup.start(f"perf-{proxy.name}", argv, cpu=cpu)))
    run_tool(load_argv(url, seconds, h2), cpu=cpu, timeout_s=seconds + 30)
    result: dict[str, dict[str, float]] = {}
    for proxy, out, recorder in recorders:
        with contextlib.suppress(subprocess.TimeoutExpired):
            recorder.popen.wait(timeout=seconds + 15)
        sup.stop(recorder)
        if recorder.popen.returncode == 0 and out.exists():
            text = run_tool(
                [tool, "report", "-i", str(out), "--sort", "dso", "--stdio"],
                cpu=cpu,
                timeout_s=60,
            )
            result[proxy.name] = components(parse_perf_dso(text))
    return result
