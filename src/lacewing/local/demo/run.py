"""Driving the demo: start it, measure it against vote-bot's own counts, tear it down.

Measuring starts once the mesh carries the bot's traffic (`wait_for_traffic`: the bot's latest
request succeeded): pods are ready a moment before every proxy has heard from destination, and
a request the bot makes in that moment can fail in its own proxy (no endpoints yet, the
Service's address not yet routed), which web's proxy never sees.

The bot is paused (it finishes the request in flight, then idles) whenever its counts and the
proxies' metrics are read, so both are taken at the same instant with nothing in flight: the
web workload's inbound response count over a window then equals the number of requests the
bot made in it, and its success count the bot's successes. `Measure.agreement()` says whether
they match.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from lacewing.errors import RuntimeEnvError
from lacewing.local import control, netns
from lacewing.viz.scrape import scrape_local
from lacewing.viz.stat import PodScrape, WorkloadStat, compute

__all__ = ["BOT_POD", "BotCounts", "Measure", "Snapshot", "snapshot", "wait_for_traffic"]

BOT_POD = "vote-bot-0"
BOT_PORT = 8081
FRONT_END = "web"
DEMO_NAMESPACE = "emojivoto"


@dataclass(frozen=True)
class BotCounts:
    requests: int
    success: int
    failures: tuple[tuple[str, int], ...] = ()  # (reason, count), sorted by reason
    last_ok: bool | None = None

    def __sub__(self, other: BotCounts) -> BotCounts:
        before = dict(other.failures)
        failures = tuple(
            (reason, n - before.get(reason, 0))
            for reason, n in self.failures
            if n - before.get(reason, 0) > 0
        )
        return BotCounts(
            self.requests - other.requests, self.success - other.success, failures, self.last_ok
        )


def bot_call(space: str, method: str, path: str) -> BotCounts:
    def call() -> tuple[int, bytes]:
        return netns.http_get("127.0.0.1", BOT_PORT, path, method=method, timeout=12)

    status, body = netns.in_netns(space, call, timeout=15)
    if status != 200:
        raise RuntimeEnvError(f"vote-bot answered {status} to {method} {path}")
    data = json.loads(body)
    failures = data.get("failures") or {}
    return BotCounts(
        int(data.get("requests", 0)),
        int(data.get("success", 0)),
        tuple(sorted((str(k), int(v)) for k, v in failures.items())),
        data.get("last_ok"),
    )


def wait_for_traffic(
    cluster: str,
    timeout: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once the bot's latest request through the mesh succeeded (bounded)."""
    space = control.find_pod(cluster, BOT_POD).netns
    deadline = clock() + timeout
    while True:
        counts = bot_call(space, "GET", "/stats")
        if counts.last_ok:
            return
        if clock() >= deadline:
            seen = ", ".join(f"{reason} x{n}" for reason, n in counts.failures) or "none yet"
            raise RuntimeEnvError(
                f"no request of vote-bot reached web through the mesh in {timeout:g}s "
                f"(its failures: {seen})",
                hint=f"see `lacewing local logs vote-bot-0 --proxy --name {cluster}`",
            )
        sleep(0.2)


@dataclass(frozen=True)
class Snapshot:
    at: float
    bot: BotCounts
    pods: list[PodScrape]


def snapshot(cluster: str, clock: Callable[[], float] = time.monotonic) -> Snapshot:
    """Pause the bot, read its counts and every proxy's metrics, resume it."""
    space = control.find_pod(cluster, BOT_POD).netns
    counts = bot_call(space, "POST", "/pause")
    try:
        pods = scrape_local(cluster, DEMO_NAMESPACE)
        at = clock()
    finally:
        bot_call(space, "POST", "/resume")
    return Snapshot(at, counts, pods)


@dataclass(frozen=True)
class Measure:
    rows: list[WorkloadStat]
    bot: BotCounts
    window: float

    @classmethod
    def between(cls, first: Snapshot, last: Snapshot) -> Measure:
        window = last.at - first.at
        return cls(compute(first.pods, last.pods, window), last.bot - first.bot, window)

    def front_end(self) -> WorkloadStat | None:
        return next((r for r in self.rows if r.name == FRONT_END), None)

    def agreement(self) -> tuple[bool, str]:
        web = self.front_end()
        seen = (int(web.requests), int(web.successes)) if web else (0, 0)
        ok = seen == (self.bot.requests, self.bot.success)
        share = f"{self.bot.success / self.bot.requests * 100:.2f}%" if self.bot.requests else "-"
        line = (
            f"vote-bot counted {self.bot.requests} requests to web, {self.bot.success} "
            f"succeeded ({share}); web's proxy counted {seen[0]} responses, {seen[1]} "
            f"successful: {'they agree' if ok else 'they DIFFER'}"
        )
        if not ok:
            why = ", ".join(f"{reason} x{n}" for reason, n in self.bot.failures) or "none"
            line += f" (vote-bot's failures: {why})"
        return ok, line
