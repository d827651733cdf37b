"""Running one fault under counted load, and judging it as a user would.

    load starts in cli-0: 4 keep-alive connections x 25 GETs/s to http://srv:8080/ (100/s),
    15 s client timeout, through cli-0's proxy -> mTLS -> srv-N's proxy -> the app
    LEAD s of clean traffic, then `fault.inject(cluster)` (returns when the fault is over and
    undone), then TAIL s of recovery; SIGTERM ends the load (in-flight requests finish)

while `RssWatch` samples every proxy's RSS. The row passes when:
- no failure beyond the ones in flight at the fault's instants, except inside the window
  the fault declares it breaks (`Injected.allowed`, e.g. the client's own proxy is down);
- traffic recovered: every request of the last `RECOVERED` s succeeded;
- no proxy crashed: each proxy's pid is the one it had, except those the fault restarts;
- each proxy's RSS peak stays within its bound (`Fault.rss_bound_kib`, added to the RSS
  before the fault: 32 MiB unless the fault sets another, with its reason);
- the fault's own checks (`Injected.problems`) are empty, and none of the requests started
  inside `Injected.stopped` succeeded (traffic that must stop, such as on expired certificates).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.faults.cluster import FaultCluster, RssWatch
from tests.faults.counting import Counts, count

__all__ = ["PROXIES", "Fault", "Injected", "Row", "run_fault"]

PROXIES = ("cli-0", "srv-0", "srv-1")
LEAD = 2.0
TAIL = 3.0
RECOVERED = 2.0
LOAD = ("http://srv:8080/", "600", "4", "25", "15")  # url, max seconds, conns, rate, timeout
DEFAULT_RSS_BOUND_KIB = 32 * 1024


@dataclass
class Injected:
    """What a fault did: when it hit, what it may break, what it found wrong."""

    instants: list[float]
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    allowed: Callable[[float], bool] = lambda start: False
    restarted: tuple[str, ...] = ()  # proxies the fault itself restarts
    stopped: tuple[float, float] | None = None  # no request may succeed in this window


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    inject: Callable[[FaultCluster], Injected]
    short: bool = False  # part of the short run in `make test`
    rss_bound_kib: int = DEFAULT_RSS_BOUND_KIB
    rss_bound_why: str = "churn only: renewals, a few reconnections"
    tools: tuple[str, ...] = ()  # commands its checks run (tests.support.tools: the packages)


@dataclass
class Row:
    fault: Fault
    seconds: float  # from the fault's start until it was over and undone
    counts: Counts
    rss_pod: str
    rss_kib: tuple[int, int, int]  # before, peak, after (of the proxy that grew most)
    problems: list[str]
    notes: list[str]
    p99_ms: float | None = None  # latency of the requests started during the fault

    @property
    def passed(self) -> bool:
        return not self.problems


def run_fault(cluster: FaultCluster, fault: Fault) -> Row:
    pids = {pod: cluster.pid(pod, "proxy") for pod in PROXIES}
    with RssWatch(cluster, PROXIES) as rss:
        load = cluster.python_in("cli-0", "tests.faults.loadgen", *LOAD)
        try:
            time.sleep(LEAD)
            started = time.time()
            injected = fault.inject(cluster)
            seconds = time.time() - started
            time.sleep(TAIL)
        finally:
            load.send_signal(signal.SIGTERM)
            out, err = load.communicate(timeout=60)
    if load.returncode != 0 or not out:
        raise RuntimeError(f"load generator failed ({load.returncode}): {err[-500:]}")
    records = json.loads(out)["records"]
    counts = count(records, injected.instants, injected.allowed)
    problems = list(injected.problems)
    hit = injected.instants[0] if injected.instants else started
    failed = [r for r in records if r[2] != "ok"]
    if failed:
        shown = ", ".join(f"{r[2]} at {r[0] - hit:+.3f}..{r[1] - hit:+.3f} s" for r in failed[:6])
        more = f" (+{len(failed) - 6} more)" if len(failed) > 6 else ""
        injected.notes.append(f"failed (start..end from the fault): {shown}{more}")
    if counts.beyond:
        problems.append(
            f"{counts.beyond} requests failed beyond the ones in flight ({dict(counts.outcomes)})"
        )
    if injected.stopped is not None:
        low, high = injected.stopped
        through = [r for r in records if low <= r[0] <= high and r[2] == "ok"]
        if through:
            problems.append(f"{len(through)} requests succeeded while they should have stopped")
    last = records[-1][0] if records else 0.0
    late = [r for r in records if r[0] >= last - RECOVERED and r[2] != "ok"]
    if late:
        problems.append(f"not recovered: {len(late)} of the last {RECOVERED:g} s failed")
    if not records or last < started:
        problems.append("the load generator sent nothing during the fault")
    for pod, pid in pids.items():
        now = cluster.pid(pod, "proxy")
        if now != pid and pod not in injected.restarted:
            problems.append(f"{pod}'s proxy restarted (pid {pid} -> {now}): it crashed")
    grew = max(PROXIES, key=lambda pod: rss.peak(pod) - rss.before(pod))
    for pod in PROXIES:
        if rss.peak(pod) - rss.before(pod) > fault.rss_bound_kib:
            problems.append(
                f"{pod}'s proxy RSS grew {(rss.peak(pod) - rss.before(pod)) / 1024:.1f} MiB "
                f"(bound {fault.rss_bound_kib / 1024:.0f} MiB)"
            )
    during = sorted(r[1] - r[0] for r in records if started <= r[0] <= started + seconds)
    p99 = during[min(len(during) - 1, int(len(during) * 0.99))] * 1000 if during else None
    return Row(
        p99_ms=p99,
        fault=fault,
        seconds=seconds,
        counts=counts,
        rss_pod=grew,
        rss_kib=(rss.before(grew), rss.peak(grew), rss.after(grew)),
        problems=problems,
        notes=injected.notes,
    )
