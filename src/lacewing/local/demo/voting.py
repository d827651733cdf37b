"""The voting back end: `POST /vote?choice=X` and `GET /leaderboard`.

Every `--fail-every`-th vote (by a counter, so the share is exact) answers 500, the way
emojivoto's voting service fails votes for one emoji.
"""

from __future__ import annotations

import argparse
import threading
from collections import Counter
from typing import Any

from lacewing.local.demo.http import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="voting")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--fail-every", type=int, default=8, help="0: never fail")
    args = parser.parse_args(argv)
    votes: Counter[str] = Counter()
    lock = threading.Lock()
    seen = 0

    def route(method: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        nonlocal seen
        if path == "/vote":
            with lock:
                seen += 1
                if args.fail_every and seen % args.fail_every == 0:
                    return 500, {"error": "the ballot box jammed"}
                votes[query.get("choice", "?")] += 1
            return 200, {"ok": True}
        if path == "/leaderboard":
            with lock:
                return 200, dict(votes.most_common())
        return 404, {"error": "not found"}

    serve(args.port, route)


if __name__ == "__main__":
    main()
