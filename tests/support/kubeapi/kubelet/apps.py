"""Test apps the kubelet's images run (`images.py`): `python -m ...apps NAME [--port P]`.

- `echo`: answers every request with JSON: the pod's name (HOSTNAME), the method, the
  path and the request headers it saw, and logs `seen METHOD PATH` for each on stdout (so a
  test can tell what reached the app). The HTTP echo image, testbed.local/echo.
- `client`: GET /fetch?url=U&n=N makes N requests to U (by name, resolved inside its pod,
  one connection per request) and answers with the JSON list of (status, body) it got;
  testbed.local/client. Tests drive it from the pod's own loopback, so its requests leave
  from inside the pod like any app's.
Standard library only; logs one line when listening.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Echo(_Base):
    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        print(f"seen {self.command} {self.path}", flush=True)
        self.reply(
            200,
            {
                "pod": os.environ.get("HOSTNAME", "?"),
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
            },
        )

    do_GET = do_POST = do_PUT = do_DELETE = _echo


def _fetch(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except (OSError, ValueError) as err:
        return 0, f"{type(err).__name__}: {err}"


class Client(_Base):
    def do_GET(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        if parsed.path == "/":
            self.reply(200, {"app": "client", "try": "/fetch?url=...&n=..."})
            return
        if parsed.path != "/fetch":
            self.reply(404, {"error": "try /fetch?url=...&n=..."})
            return
        query = dict(urllib.parse.parse_qsl(parsed.query))
        n = min(int(query.get("n", "1")), 500)
        results = [_fetch(query["url"], float(query.get("timeout", "5"))) for _ in range(n)]
        self.reply(200, results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="testbed-app")
    parser.add_argument("app", choices=["echo", "client"])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    handler = {"echo": Echo, "client": Client}[args.app]
    server = ThreadingHTTPServer(("0.0.0.0", args.port), handler)
    print(f"{args.app} listening on :{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
