"""A test app for policy on the local cluster: it says what reached it.

    python -m tests.integration.local.policy_app --http 8080,8081 --tcp 9000

Each HTTP port answers 200 with `<pod> <port> <path>` and logs `seen http <port> <path>`; each
TCP port reads one line, logs `seen tcp <port> <line>` and echoes it back. The log (stdout,
the pod's log file) is what a test reads to prove a denied request never reached the app.
"""

from __future__ import annotations

import argparse
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _http(port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            print(f"seen http {port} {self.path}", flush=True)
            body = f"{os.environ.get('POD_NAME', '?')} {port} {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("0.0.0.0", port), Handler)


def _tcp(port: int) -> socketserver.ThreadingTCPServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline().decode(errors="replace").strip()
            print(f"seen tcp {port} {line}", flush=True)
            self.wfile.write(f"echo {line}\n".encode())

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    return socketserver.ThreadingTCPServer(("0.0.0.0", port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", default="")
    parser.add_argument("--tcp", default="")
    args = parser.parse_args()
    servers: list[socketserver.BaseServer] = [
        _http(int(p)) for p in filter(None, args.http.split(","))
    ]
    servers += [_tcp(int(p)) for p in filter(None, args.tcp.split(","))]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("policy_app listening", flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
