"""Parsing of load-generator output and /proc files into numbers.

Everything here is pure: text in, frozen dataclasses out, so it is unit-tested without running
anything. Durations are normalised to microseconds.

- wrk (with --latency) prints `Requests/sec:  N`, `N requests in 2.00s` and a
  `Latency Distribution` block of `50%  182.00us` lines (units us, ms, s).
- h2load prints `finished in 2.00s, 1000.00 req/s, ...` and a `requests: ... N succeeded,
  N failed, N errored, N timeout` line; its per-request latencies come from `--log-file`
  (tab-separated: start time in us since the epoch, status, duration in us), from which we take
  exact percentiles, because its console output has no percentiles.
- `perf report --sort dso --stdio` prints `  53.83%  [kernel.kallsyms]` lines.
- `strace -c` prints a table whose rows end in `calls [errors] syscall`; we keep the calls.
- /proc/PID/smaps_rollup sums the process's mappings: `Rss:`, `Pss:` (shared pages divided
  among the processes that map them) and `Anonymous:` (heap, stacks, the interpreter's objects:
  memory no other process shares, what each extra sidecar really costs), all in kB.
- /proc/PID/stat fields 14 and 15 (utime, stime) are clock ticks; they are counted after the
  `)` that closes the command name, since the name itself may contain spaces or parentheses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "H2loadResult",
    "MemSample",
    "ParseError",
    "WrkResult",
    "parse_cpu_times",
    "parse_duration_us",
    "parse_h2load",
    "parse_h2load_log",
    "parse_perf_dso",
    "parse_proc_stat_ticks",
    "parse_rss_kib",
    "parse_smaps_rollup",
    "parse_strace_summary",
    "parse_wrk",
    "percentile",
]


class ParseError(ValueError):
    """The tool printed something we do not understand (the text is kept for the message)."""


_UNITS_US = {"us": 1.0, "ms": 1_000.0, "s": 1_000_000.0, "m": 60_000_000.0, "h": 3.6e9}


def parse_duration_us(text: str) -> float:
    """'182.00us' -> 182.0, '1.05ms' -> 1050.0, '2.00s' -> 2000000.0."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(us|ms|s|m|h)\s*", text)
    if match is None:
        raise ParseError(f"not a duration: {text!r}")
    return float(match.group(1)) * _UNITS_US[match.group(2)]


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_us: float
    p75_us: float
    p90_us: float
    p99_us: float
    errors: int  # socket errors of any kind plus non-2xx/3xx responses


def parse_wrk(text: str) -> WrkResult:
    """Parse the console output of `wrk --latency`."""
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    total = re.search(r"^\s*(\d+) requests in ([0-9.]+\w+)", text, re.M)
    if rps is None or total is None:
        raise ParseError(f"wrk printed no results:\n{text.strip()}")
    pct = {
        m.group(1): parse_duration_us(m.group(2))
        for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", text, re.M)
    }
    if len(pct) != 4:
        raise ParseError(f"wrk printed no latency distribution (was --latency given?):\n{text}")
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock is not None:
        errors += sum(int(g) for g in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx is not None:
        errors += int(non2xx.group(1))
    return WrkResult(
        requests=int(total.group(1)),
        seconds=parse_duration_us(total.group(2)) / 1e6,
        rps=float(rps.group(1)),
        p50_us=pct["50"],
        p75_us=pct["75"],
        p90_us=pct["90"],
        p99_us=pct["99"],
        errors=errors,
    )


@dataclass(frozen=True)
class H2loadResult:
    seconds: float
    rps: float
    succeeded: int
    failed: int  # failed + errored + timeout


def parse_h2load(text: str) -> H2loadResult:
    """Parse h2load's console summary."""
    fin = re.search(r"^finished in ([0-9.]+\w+), ([0-9.]+) req/s", text, re.M)
    req = re.search(
        r"^requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        text,
        re.M,
    )
    if fin is None or req is None:
        raise ParseError(f"h2load printed no results:\n{text.strip()}")
    return H2loadResult(
        seconds=parse_duration_us(fin.group(1)) / 1e6,
        rps=float(fin.group(2)),
        succeeded=int(req.group(1)),
        failed=int(req.group(2)) + int(req.group(3)) + int(req.group(4)),
    )


def parse_h2load_log(lines: Iterable[str]) -> list[float]:
    """Durations (us) of the successful requests in an h2load --log-file, in file order."""
    out: list[float] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise ParseError(f"h2load log line {number} has {len(fields)} fields: {line!r}")
        status, duration = fields[1], fields[2]
        if status.startswith(("2", "3")):
            out.append(float(duration))
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 < q <= 100), nearest-rank, of unsorted values."""
    if not values:
        raise ParseError("no samples to take a percentile of")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def parse_proc_stat_ticks(text: str) -> tuple[int, int]:
    """(utime, stime), in clock ticks, from the text of /proc/PID/stat."""
    end = text.rfind(")")
    if end < 0:
        raise ParseError(f"not a /proc/PID/stat line: {text!r}")
    fields = text[end + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]), int(fields[12])


def parse_rss_kib(text: str) -> int:
    """VmRSS in KiB from the text of /proc/PID/status."""
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    if match is None:
        raise ParseError("no VmRSS line in /proc/PID/status (has the process exited?)")
    return int(match.group(1))


@dataclass(frozen=True)
class MemSample:
    """One process's memory, MiB: resident, proportional share, private anonymous."""

    rss: float
    pss: float
    anon: float


def parse_smaps_rollup(text: str) -> MemSample:
    """Rss, Pss and Anonymous from the text of /proc/PID/smaps_rollup, in MiB."""
    found: dict[str, int] = {}
    for name in ("Rss", "Pss", "Anonymous"):
        match = re.search(rf"^{name}:\s+(\d+) kB", text, re.M)
        if match is None:
            raise ParseError(f"no {name} line in /proc/PID/smaps_rollup (has the process exited?)")
        found[name] = int(match.group(1))
    return MemSample(found["Rss"] / 1024.0, found["Pss"] / 1024.0, found["Anonymous"] / 1024.0)


def parse_cpu_times(text: str, cpu: int) -> tuple[int, int]:
    """(busy, total) clock ticks of one CPU from the text of /proc/stat.

    Busy is user+nice+system+irq+softirq+steal; total adds idle and iowait. Guest time is
    already inside user, so it is not added again.
    """
    match = re.search(rf"^cpu{cpu} (.*)$", text, re.M)
    if match is None:
        raise ParseError(f"no cpu{cpu} line in /proc/stat")
    values = [int(v) for v in match.group(1).split()]
    user, nice, system, idle, iowait, irq, softirq = values[:7]
    steal = values[7] if len(values) > 7 else 0
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def parse_strace_summary(text: str) -> dict[str, int]:
    """{syscall: calls} from the table `strace -c` writes (the `total` row left out)."""
    calls: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(fields) in (5, 6) and fields[0].replace(".", "", 1).isdigit():
            name = fields[-1]
            if name != "total" and fields[3].isdigit():
                calls[name] = calls.get(name, 0) + int(fields[3])
    if not calls:
        raise ParseError(f"no strace -c table in:\n{text.strip()[:400]}")
    return calls


def parse_perf_dso(text: str) -> dict[str, float]:
    """{shared object: share of samples (0..1)} from `perf report --sort dso --stdio`."""
    shares: dict[str, float] = {}
    for match in re.finditer(r"^\s+([0-9.]+)%\s+(\S.*?)\s*$", text, re.M):
        shares[match.group(2)] = shares.get(match.group(2), 0.0) + float(match.group(1)) / 100
    if not shares:
        raise ParseError(f"no samples in perf report:\n{text.strip()[:400]}")
    return shares
