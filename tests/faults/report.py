"""The fault suite's markdown report: one row per fault, then what each fault noted.

`render(rows, machine, command)` returns the report; `write(rows, directory)` writes it as
`<directory>/faults-<date>.md` (tests/results/ by default) and returns the path. RSS figures
are VmRSS in MiB of the proxy whose RSS grew most during that fault (named in the row).
"""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.faults.cluster import LIFETIME, REPO
from tests.faults.defects import DEFECTS
from tests.faults.runner import LEAD, LOAD, RECOVERED, TAIL, Row

__all__ = ["machine", "render", "write"]


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def machine() -> list[tuple[str, str]]:
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    cpus = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return [
        ("host", platform.node()),
        ("CPUs", cpus),
        ("kernel", platform.release()),
        ("Python", platform.python_version()),
        ("lacewing", f"0.1.0 at {commit}{' (with local changes)' if dirty else ''}"),
        ("load average at start", load),
    ]


def render(rows: Sequence[Row], about: list[tuple[str, str]], command: str) -> str:
    url, _, conns, rate, timeout = LOAD
    passed = sum(1 for r in rows if r.passed)
    lines = [
        f"# lacewing fault suite, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"`{command}`: {passed} of {len(rows)} faults passed.",
        "",
        "## Machine",
        "",
        "|  |  |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in about),
        "",
        "## Setup",
        "",
        "- A local cluster (`lacewing local up`, every pod a network namespace with the real "
        "iptables rules and the sidecar as uid 2102): identity and destination controllers, "
        "srv x2 (meshed, answers after 5 ms), cli x1 (meshed, runs the load), atk x1 "
        "(unmeshed, the hostile clients).",
        f"- Load: {conns} keep-alive connections from cli-0's app to `{url}` (through cli-0's "
        f"proxy, mTLS to srv's proxies), each paced at {rate} GETs/s, {timeout} s client "
        "timeout, no retries; every request is counted.",
        f"- Each fault: {LEAD:g} s of load, the fault (bounded; it returns once undone and "
        f"the cluster is ready again), {TAIL:g} s more load.",
        f"- Certificates live {LIFETIME} s (proxies renew at 70%), so renewals run during "
        "the suite and a certificate can expire within a fault.",
        "- *in flight*: failed requests that had started and not ended at the fault's instant "
        "(the kill, the stop, the start of loss). *expected*: failures the fault is meant "
        "to cause beyond those (the app's own proxy down; expired certificates). *lost*: "
        "every other failure. *p99 ms*: the 99th percentile latency of the requests started "
        "while the fault lasted.",
        f"- Pass: nothing lost; every request of the last {RECOVERED:g} s succeeded; no proxy "
        "restarted that the fault did not restart; every proxy's RSS peak within its bound "
        "above its RSS before the fault; the fault's own checks (listed below) held.",
        "",
        "## Results",
        "",
        "| fault | s | sent | ok | failed | in flight | expected | lost | p99 ms | RSS of | "
        "before | peak | after | bound (MiB) | result |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        c = r.counts
        before, peak, after = r.rss_kib
        p99 = f"{r.p99_ms:.0f}" if r.p99_ms is not None else "-"
        lines.append(
            f"| {r.fault.name} | {r.seconds:.1f} | {c.sent} | {c.ok} | {c.failed} | "
            f"{c.in_flight} | {c.expected} | {c.beyond} | {p99} | {r.rss_pod} | {_mib(before)} | "
            f"{_mib(peak)} | {_mib(after)} | +{r.fault.rss_bound_kib / 1024:.0f} | "
            f"{'pass' if r.passed else 'FAIL'} |"
        )
    lines += ["", "## Defects found", ""]
    fixed = sum(d.status == "fixed" for d in DEFECTS)
    lines.append(
        f"What the suite and the fuzzers (tests/unit/fuzz) found: {fixed} fixed, "
        f"{len(DEFECTS) - fixed} open (tests/faults/defects.py)."
    )
    lines += ["", "| found by | case | status | test, or what is left |", "|---|---|---|---|"]
    for d in DEFECTS:
        cells = (d.found_by, d.case, d.status, d.guard)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "## Each fault", ""]
    for r in rows:
        lines.append(f"**{r.fault.name}**: {r.fault.what}. RSS bound: {r.fault.rss_bound_why}.")
        for note in r.notes:
            lines.append(f"- {note}")
        if r.counts.outcomes:
            lines.append(f"- failures by outcome: {dict(r.counts.outcomes)}")
        for problem in r.problems:
            lines.append(f"- **FAIL**: {problem}")
        lines.append("")
    return "\n".join(lines)


def write(rows: Sequence[Row], directory: Path, command: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"faults-{time.strftime('%Y-%m-%d', time.gmtime())}.md"
    path.write_text(render(rows, machine(), command))
    return path
