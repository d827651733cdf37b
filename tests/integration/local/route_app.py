"""A test app for the route tests: answers its pod's name, and fails or stalls on demand.

`python -m tests.integration.local.route_app PORT` serves HTTP/1.1 keep-alive. Environment:
FAIL_EVERY=n answers every n-th GET 503 (counted over the whole process), SLEEP_MS stalls
every GET that long, POST_STATUS answers every POST with that status (its body is read
whole first), FAIL_REPLICA=r makes the replica numbered r answer every GET 503 until
`POST /heal` reaches it. `GET /stats` (never failed or stalled) answers the JSON count of
requests by method, so a test can see how many times a request really arrived.
Connection failures, for an unmeshed workload (its clients' proxies meet them directly):
RESET_REPLICA=r makes replica r reset (RST, no answer) every GET but /stats, counted as
"reset"; RESET_POST=1 resets every POST once its body is read; REFUSE_REPLICA=r makes
replica r listen on 127.0.0.1 only, so it looks ready in its pod and refuses every
connection from another pod.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAIL_EVERY = int(os.environ.get("FAIL_EVERY", "0"))
SLEEP = float(os.environ.get("SLEEP_MS", "0")) / 1000
POST_STATUS = int(os.environ.get("POST_STATUS", "200"))
BROKEN = [os.environ.get("FAIL_REPLICA", "-") == os.environ.get("POD_REPLICA")]
RESETS = os.environ.get("RESET_REPLICA", "-") == os.environ.get("POD_REPLICA")
RESET_POST = os.environ.get("RESET_POST") == "1"
REFUSES = os.environ.get("REFUSE_REPLICA", "-") == os.environ.get("POD_REPLICA")
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

    def _reset(self, kind: str) -> None:
        """No answer: the connection is reset (SO_LINGER 0, then closed)."""
        with _lock:
            _counts[kind] += 1
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def do_GET(self) -> None:
        if self.path == "/stats":
            with _lock:
                body = json.dumps(dict(_counts)).encode()
            self._answer(200, body)
            return
        if RESETS:
            self._reset("reset")
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
        if RESET_POST:
            self._reset("POST")
            return
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
    host = "127.0.0.1" if REFUSES else "0.0.0.0"
    ThreadingHTTPServer((host, int(sys.argv[1])), Handler).serve_forever()
