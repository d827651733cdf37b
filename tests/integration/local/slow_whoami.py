"""A test app for the local cluster: answers every GET with its pod's name, optionally slowly.

`python -m tests.integration.local.slow_whoami PORT` serves HTTP/1.1 keep-alive; when the
pod's replica index (POD_REPLICA, set by the runtime) equals $SLOW_REPLICA (or that is
`all`) it sleeps $SLOW_MS milliseconds before answering: one replica of a workload can be
the slow one, or every replica can take a realistic few milliseconds.
"""

from __future__ import annotations

import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW = os.environ.get("SLOW_REPLICA", "none") in (os.environ.get("POD_REPLICA", ""), "all")
DELAY = float(os.environ.get("SLOW_MS", "0")) / 1000 if SLOW else 0.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536  # head and body in one write (flushed after each request)
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if DELAY:
            time.sleep(DELAY)
        body = os.environ.get("POD_NAME", "?").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    print(f"slow_whoami listening (delay {DELAY * 1000:g} ms)", flush=True)
    ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
