"""A tiny threaded HTTP/1.1 server and client shared by the demo apps (stdlib only).

`serve(port, route)` answers every request with `route(method, path, query)`, which returns
`(status, json-able body)`; keep-alive works, so a proxy in front can pool connections.
`get_json(url)` makes one request on a fresh connection and returns `(status, body)`; a
connection failure is status 0 with `{"error": message, "kind": exception class name}`.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = Callable[[str, str, dict[str, str]], tuple[int, Any]]


def serve(port: int, route: Route, host: str = "0.0.0.0") -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            try:
                status, body = route(self.command, url.path, query)
            except Exception as exc:  # the demo app's own bug: answer 500, keep serving
                status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print(f"listening on {host}:{port}", flush=True)
    server.serve_forever()


def get_json(url: str, method: str = "GET", timeout: float = 5.0) -> tuple[int, Any]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path or "/")
        response = conn.getresponse()
        raw = response.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return response.status, body
    except OSError as exc:
        return 0, {"error": str(exc), "kind": type(exc).__name__}
    finally:
        conn.close()
