"""The web front end: `/api/list` (asks emoji) and `/api/vote?choice=X` (emoji, then voting).

Back ends are found by Service name (`--emoji http://emoji:8080`); a back end's failure is
passed on as 500 (or 502 when it could not be reached).
"""

from __future__ import annotations

import argparse
import urllib.parse
from typing import Any

from lacewing.local.demo.http import get_json, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="web")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--emoji", default="http://emoji:8080")
    parser.add_argument("--voting", default="http://voting:8080")
    args = parser.parse_args(argv)

    def passed_on(status: int, body: Any) -> tuple[int, Any]:
        return (502 if status == 0 else 500), {"error": "back end failed", "detail": body}

    def route(method: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/list":
            status, body = get_json(f"{args.emoji}/list")
            return (200, body) if status == 200 else passed_on(status, body)
        if path == "/api/vote":
            choice = urllib.parse.quote(query.get("choice", ""))
            status, body = get_json(f"{args.emoji}/find?shortcode={choice}")
            if status != 200:
                return passed_on(status, body)
            status, body = get_json(f"{args.voting}/vote?choice={choice}", method="POST")
            return (200, body) if status == 200 else passed_on(status, body)
        if path == "/":
            return 200, {"app": "lacewing demo", "try": ["/api/list", "/api/vote?choice=joy"]}
        return 404, {"error": "not found"}

    serve(args.port, route)


if __name__ == "__main__":
    main()
