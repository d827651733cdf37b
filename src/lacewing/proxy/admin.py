"""The admin server (4191): /metrics, /ready, /live, /policy, POST /shutdown.

A deliberately small HTTP/1.1 server on asyncio streams (scrapes are rare, so this is not the
data path): it reads one request head (at most 8 KiB), routes on (method, path) through
`ROUTES`, answers with Content-Length and closes. `/shutdown` is accepted only with POST and
only from a loopback peer (403 otherwise), as Linkerd's admin server does; it answers 200 and
then asks the proxy to drain and exit. `/policy` is the JSON of the inbound policy the proxy
enforces on each port it has asked the policy controller about (`lacewing diagnostics
policy`); 404 when the proxy has no policy controller.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass

from lacewing.proxy.metrics import process_metrics
from lacewing.proxy.metrics.text import CONTENT_TYPE
from lacewing.proxy.transport import listen_socket

__all__ = ["AdminServer", "AdminState"]


@dataclass
class AdminState:
    render_metrics: Callable[[], list[str]]
    is_ready: Callable[[], bool]
    request_shutdown: Callable[[], None]
    policy: Callable[[], object] | None = None  # what `/policy` shows (JSON-able)


Response = tuple[int, str, bytes]
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 503: "Service Unavailable"}  # fmt: skip


class AdminServer:
    def __init__(self, state: AdminState) -> None:
        self.state = state
        self.routes: dict[str, Callable[[str, bool], Response]] = {
            "/metrics": self._metrics,
            "/ready": self._ready,
            "/live": self._live,
            "/policy": self._policy,
            "/shutdown": self._shutdown,
        }
        self._server: asyncio.Server | None = None
        self._after_response: list[Callable[[], None]] = []

    async def start(self, host: str, port: int) -> asyncio.Server:
        sock = listen_socket(host, port)  # (no getaddrinfo for an address: transport.listen)
        self._server = await (
            asyncio.start_server(self._handle, sock=sock)
            if sock is not None
            else asyncio.start_server(self._handle, host, port, reuse_address=True)
        )
        return self._server

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _metrics(self, method: str, local: bool) -> Response:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"use GET\n"
        lines = self.state.render_metrics() + process_metrics()
        return 200, CONTENT_TYPE, ("\n".join(lines) + "\n").encode()

    def _ready(self, method: str, local: bool) -> Response:
        if self.state.is_ready():
            return 200, "text/plain", b"ready\n"
        return 503, "text/plain", b"not ready\n"

    def _live(self, method: str, local: bool) -> Response:
        return 200, "text/plain", b"live\n"

    def _policy(self, method: str, local: bool) -> Response:
        if self.state.policy is None:
            return 404, "text/plain", b"this proxy has no policy controller\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"use GET\n"
        return 200, "application/json", json.dumps(self.state.policy()).encode() + b"\n"

    def _shutdown(self, method: str, local: bool) -> Response:
        if method != "POST":
            return 405, "text/plain", b"use POST\n"
        if not local:
            return 403, "text/plain", b"shutdown is only allowed from localhost\n"
        self._after_response.append(self.state.request_shutdown)
        return 200, "text/plain", b"shutdown\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        peer = writer.get_extra_info("peername")
        local = _is_loopback(peer[0] if peer else "")
        if len(parts) != 3:
            status, ctype, body = 400, "text/plain", b"bad request\n"
            method = "GET"
        else:
            method = parts[0].decode("latin-1")
            path = parts[1].decode("latin-1").split("?", 1)[0]
            route = self.routes.get(path)
            if route is None:
                status, ctype, body = 404, "text/plain", b"not found\n"
            else:
                status, ctype, body = route(method, local)
        payload = b"" if method == "HEAD" else body
        writer.write(
            f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\ncontent-type: {ctype}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + payload
        )
        try:
            await writer.drain()
        except OSError:
            pass
        writer.close()
        callbacks, self._after_response = self._after_response, []
        for callback in callbacks:
            callback()


def _is_loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback
