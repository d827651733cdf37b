"""The dashboard's HTTP server: the standard library's threading server around `Api`.

Only GET (and HEAD) of the paths `lacewing.viz.dashboard.api` knows; every request runs in its
own thread (a Prometheus query blocks: a local cluster's is reached by a thread that enters the
node namespace). It listens on 127.0.0.1 by default (`--address` to change it); port 0 picks
a free one, which `url` reports. `serve_forever` returns when `shutdown` is called from
another thread or the process gets SIGINT / SIGTERM (see the CLI); `close` releases the socket.
No request is logged (the CLI prints the URL, and errors go to the page).
A `Streamed` answer (the live tap) is sent chunked as its chunks come; before each one the
server looks whether the browser closed the connection (readable with nothing to read), and
a write that fails means the same: either way it stops and closes the answer (which closes
the taps), as it does at the answer's end.
`running(server)` serves on a named thread for the length of a `with` block (`viz
dashboard`, `lacewing demo`) and always shuts the server down and closes it at its end.
"""

from __future__ import annotations

import http.server
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from lacewing.viz.dashboard.tap import Streamed

__all__ = ["DashboardServer", "Handles", "running"]


class Handles(Protocol):
    """What answers: `lacewing.viz.dashboard.api.Api`, or `forward.Forward` (the cluster's)."""

    def answer(self, target: str) -> tuple[int, str, bytes] | Streamed: ...


class _Handler(http.server.BaseHTTPRequestHandler):
    server: DashboardServer
    protocol_version = "HTTP/1.1"

    def _answer(self, body_too: bool) -> None:
        answer = self.server.api.answer(self.path)
        if isinstance(answer, Streamed):
            self._stream(answer, body_too)
            return
        status, kind, body = answer
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body_too:
            self.wfile.write(body)

    def _stream(self, answer: Streamed, body_too: bool) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", answer.kind)
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if not body_too:
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in answer.chunks:
                if self._gone():
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            else:
                self.wfile.write(b"0\r\n\r\n")
                return
            self.close_connection = True
        except OSError:  # the browser went away mid-write
            self.close_connection = True
        finally:
            answer.close()

    def _gone(self) -> bool:
        """Whether the peer closed its side (nothing more will come on a streamed answer)."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class DashboardServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: Handles, address: str = "127.0.0.1", port: int = 0) -> None:
        self.api = api
        super().__init__((address, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def close(self) -> None:
        self.server_close()


@contextmanager
def running(server: DashboardServer) -> Iterator[DashboardServer]:
    """Serve on a thread while the block runs; shut down, join and close at its end."""
    runner = threading.Thread(target=server.serve_forever, name="dashboard-http", daemon=True)
    runner.start()
    try:
        yield server
    finally:
        server.shutdown()
        runner.join(timeout=5)
        server.close()
