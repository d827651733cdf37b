"""vote-bot's own counts: every request classified, failures kept by reason."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lacewing.local.demo.bot import Bot, failure_reason


def test_failure_reasons() -> None:
    assert failure_reason(503, {"error": "x"}) == "503"
    assert failure_reason(0, {"error": "timed out", "kind": "TimeoutError"}) == (
        "no response: TimeoutError"
    )
    assert failure_reason(0, None) == "no response: error"


def test_the_bot_counts_what_came_back() -> None:
    answers = iter([200, 503, 200])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status = next(answers, 200)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bot = Bot(f"http://127.0.0.1:{server.server_address[1]}", rate=200.0)
        threading.Thread(target=bot.loop, daemon=True).start()
        status, first = bot.route("POST", "/pause", {})
        while first["requests"] < 3:
            bot.route("POST", "/resume", {})
            status, first = bot.route("POST", "/pause", {})
        assert status == 200 and first["paused"] is True
        assert first["requests"] == first["success"] + first["failure"]
        assert first["failures"].get("503") == 1
        assert isinstance(first["last_ok"], bool)
    finally:
        server.shutdown()
        server.server_close()
