"""The fault suite's app: GET answers the pod's name; POST reads the body, slowly if asked.

`python -m tests.faults.app PORT` serves HTTP/1.1 keep-alive on a thread per connection.
GET answers POD_NAME after $SLOW_MS milliseconds. POST reads the whole request body and
answers the number of bytes it read; `?slow=SECONDS&rate=BYTES_PER_SECOND` makes it read at
most `rate` bytes per second for the first `slow` seconds (a slow reader: the proxies in
front of it must hold the sender back instead of buffering), then as fast as it can.
"""

from __future__ import annotations

import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DELAY = float(os.environ.get("SLOW_MS", "0")) / 1000
CHUNK = 65536


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536
    disable_nagle_algorithm = True

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if DELAY:
            time.sleep(DELAY)
        self._answer(os.environ.get("POD_NAME", "?").encode())

    def do_POST(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        slow = float(query.get("slow", ["0"])[0])
        rate = float(query.get("rate", ["0"])[0])
        left = int(self.headers.get("Content-Length", "0"))
        started = time.monotonic()
        got = 0
        while left > 0:
            elapsed = time.monotonic() - started
            if rate and elapsed < slow:
                step = min(CHUNK, left, max(1, int(rate / 10)))
                data = self.rfile.read(step)
                time.sleep(0.1)
            else:
                data = self.rfile.read(min(CHUNK * 16, left))
            if not data:
                break
            got += len(data)
            left -= len(data)
        self._answer(str(got).encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    print(f"faults app listening (GET delay {DELAY * 1000:g} ms)", flush=True)
    ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
