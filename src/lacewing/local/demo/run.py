"""Driving the demo: start it, measure it against vote-bot's own counts, tear it down.

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

__all__ = ["BOT_POD", "BotCounts", "Measure", "Snapshot", "snapshot"]

BOT_POD = "vote-bot-0"
BOT_PORT = 8081
FRONT_END = "web"
DEMO_NAMESPACE = "emojivoto"


@dataclass(frozen=True)
class BotCounts:
    requests: int
    success: int

    def __sub__(self, other: BotCounts) -> BotCounts:
        return BotCounts(self.requests - other.requests, self.success - other.success)


def bot_call(space: str, method: str, path: str) -> BotCounts:
    def call() -> tuple[int, bytes]:
        return netns.http_get("127.0.0.1", BOT_PORT, path, method=method, timeout=12)

    status, body = netns.in_netns(space, call, timeout=15)
    if status != 200:
        raise RuntimeEnvError(f"vote-bot answered {status} to {method} {path}")
    data = json.loads(body)
    return BotCounts(int(data.get("requests", 0)), int(data.get("success", 0)))


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
        return ok, line
