"""The emoji back end: `GET /list` and `GET /find?shortcode=X`.

The replica whose `POD_REPLICA` equals `--slow-replica` sleeps `--slow-ms` before each answer,
so the demo has one slower endpoint.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from lacewing.local.demo.http import serve

EMOJI = {
    "joy": "😂", "heart": "❤️", "fire": "🔥", "rocket": "🚀", "tada": "🎉",
    "doughnut": "🍩", "pizza": "🍕", "sunglasses": "😎", "unicorn": "🦄", "bug": "🐛",
}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="emoji")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--slow-replica", type=int, default=-1)
    parser.add_argument("--slow-ms", type=float, default=40.0)
    args = parser.parse_args(argv)
    slow = os.environ.get("POD_REPLICA") == str(args.slow_replica)
    delay = args.slow_ms / 1000 if slow else 0.0

    def route(method: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if delay:
            time.sleep(delay)
        if path == "/list":
            return 200, [{"shortcode": k, "emoji": v} for k, v in EMOJI.items()]
        if path == "/find":
            code = query.get("shortcode", "")
            if code in EMOJI:
                return 200, {"shortcode": code, "emoji": EMOJI[code]}
            return 404, {"error": f"no emoji {code!r}"}
        return 404, {"error": "not found"}

    serve(args.port, route)


if __name__ == "__main__":
    main()
