"""vote-bot, the traffic generator: calls web at a steady rate and keeps its own counts.

The loop alternates `GET /api/list` and `GET /api/vote?choice=X` on `--target` at `--rate`
requests per second. It counts every request it finished: `requests`, `success` (a response
below 500) and `failure` (5xx or no response), the same classification the proxy uses, with
each failure's reason in `failures` (`"503"`, or `"no response: TimeoutError"`) and the last
request's outcome in `last_ok`. Its control server (on `--port`, reached from inside the pod)
answers:

    GET  /stats    {"requests": n, "success": n, "failure": n, "failures": {reason: n},
                    "last_ok": bool | null, "paused": bool}
    POST /pause    stop after the request in flight; answers once the loop is idle
    POST /resume   start again

so `lacewing demo` can read the bot's counts and the proxies' metrics at the same instant.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from collections import Counter
from typing import Any

from lacewing.local.demo.emoji import EMOJI
from lacewing.local.demo.http import get_json, serve


def failure_reason(status: int, body: Any) -> str:
    """`"503"` for an error response, `"no response: <exception>"` when none came."""
    if status:
        return str(status)
    kind = body.get("kind", "error") if isinstance(body, dict) else "error"
    return f"no response: {kind}"


class Bot:
    def __init__(self, target: str, rate: float) -> None:
        self.target = target
        self.interval = 1.0 / rate
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "success": 0, "failure": 0}
        self.failures: Counter[str] = Counter()
        self.last_ok: bool | None = None
        self.run = threading.Event()
        self.run.set()
        self.idle = threading.Event()

    def loop(self) -> None:
        choices = itertools.cycle(EMOJI)
        paths = itertools.cycle(["/api/list", "/api/vote?choice="])
        next_at = time.monotonic()
        while True:
            if not self.run.is_set():
                self.idle.set()
                self.run.wait()
                self.idle.clear()
                next_at = time.monotonic()
            path = next(paths)
            if path.endswith("="):
                path += next(choices)
            status, body = get_json(self.target + path)
            ok = 0 < status < 500
            with self.lock:
                self.counts["requests"] += 1
                self.counts["success" if ok else "failure"] += 1
                self.last_ok = ok
                if not ok:
                    self.failures[failure_reason(status, body)] += 1
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def route(self, method: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/stats":
            with self.lock:
                return 200, {
                    **self.counts,
                    "failures": dict(self.failures),
                    "last_ok": self.last_ok,
                    "paused": not self.run.is_set(),
                }
        if path == "/pause" and method == "POST":
            self.run.clear()
            self.idle.wait(timeout=10)
            return self.route("GET", "/stats", {})
        if path == "/resume" and method == "POST":
            self.run.set()
            return 200, {"ok": True}
        return 404, {"error": "not found"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vote-bot")
    parser.add_argument("--target", default="http://web:8080")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    bot = Bot(args.target, args.rate)
    threading.Thread(target=bot.loop, name="vote-bot-loop", daemon=True).start()
    serve(args.port, bot.route, host="127.0.0.1")


if __name__ == "__main__":
    main()
