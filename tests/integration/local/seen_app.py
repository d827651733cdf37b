"""A test app for the local cluster: answers what it was asked, as JSON.

Every request is answered with `{"line", "host", "body", "pod"}`: its request line (so the
HTTP version the app saw), its Host header and its body. `/chunked` answers the same JSON
with chunked encoding (no Content-Length); `/flaky` fails every other request with 503
(a route that retries 5xx hides it).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()
_count = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = {"line": self.requestline, "host": self.headers.get("Host"),
                "body": body.decode("latin-1"), "pod": os.environ.get("POD_NAME", "?"),
                "orig": self.headers.get("l5d-orig-proto")}  # fmt: skip
        payload = json.dumps(seen).encode()
        if self.path.startswith("/flaky"):
            with _lock:
                _count[0] += 1
                fail = _count[0] % 2 == 1
            if fail:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.send_response(200)
        if self.path.startswith("/chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (payload[:10], payload[10:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    print("seen_app listening", flush=True)
    ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
