"""A test app for the route tests: answers its pod's name, and fails or stalls on demand.

`python -m tests.integration.local.route_app PORT` serves HTTP/1.1 keep-alive. Environment:
FAIL_EVERY=n answers every n-th GET 503 (counted over the whole process), SLEEP_MS stalls
every GET that long, POST_STATUS answers every POST with that status (its body is read
whole first), FAIL_REPLICA=r makes the replica numbered r answer every GET 503 until
`POST /heal` reaches it. `GET /stats` (never failed or stalled) answers the JSON count of
requests by method, so a test can see how many times a request really arrived.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAIL_EVERY = int(os.environ.get("FAIL_EVERY", "0"))
SLEEP = float(os.environ.get("SLEEP_MS", "0")) / 1000
POST_STATUS = int(os.environ.get("POST_STATUS", "200"))
BROKEN = [os.environ.get("FAIL_REPLICA", "-") == os.environ.get("POD_REPLICA")]
_lock = threading.Lock()
_counts: Counter[str] = Counter()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536
    disable_nagle_algorithm = True

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/stats":
            with _lock:
                body = json.dumps(dict(_counts)).encode()
            self._answer(200, body)
            return
        with _lock:
            _counts["GET"] += 1
            n = _counts["GET"]
        if SLEEP:
            time.sleep(SLEEP)
        status = 503 if BROKEN[0] or (FAIL_EVERY and n % FAIL_EVERY == 0) else 200
        self._answer(status, os.environ.get("POD_NAME", "?").encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        if self.path == "/heal":
            BROKEN[0] = False
            self._answer(200, b"healed")
            return
        with _lock:
            _counts["POST"] += 1
        self._answer(POST_STATUS, os.environ.get("POD_NAME", "?").encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    print("route_app listening", flush=True)
    ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
