"""The small asyncio server under every control-plane endpoint (identity, destination, injector).

How it works: `ControllerServer.start()` listens with `asyncio.start_server`; each accepted
connection becomes one task, named `<task_prefix>-<n>` and kept in a set, that runs the
subclass's `_connection(reader, writer)`. The task swallows what a client can cause (a reset,
a failed handshake, a timeout, a short read), logs anything else as a bug in that one request,
and always closes the writer. `stop(grace)` drains in stages: close the listener, let
in-flight connections finish within `grace` seconds (0 for endless streams), cancel the rest
and wait for them, then wait for the listener to close. Each server counts its connections
in `stats` (`lacewing.controller.metrics`), which the admin port serves.

TLS is chosen by what the constructor gets as `tls`:
- `None`: plaintext (only for loopback use);
- an `ssl.SSLContext`: used as is (so its client-certificate requirement holds);
- a function returning the current context: the listener picks it per handshake in an SNI
  callback, so a certificate rotated on disk or re-issued in memory is served without a restart.
  `start()` calls it once first so that an unusable certificate is one clear line, not a
  stream of failed handshakes.

`read_head` reads one request head up to a bound (the identity and injector APIs read a body
by `Content-Length` after it); `json_response` is the one response shape these servers write:
a JSON body on one line, `Content-Length` and `Connection: close` (one request per connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

from lacewing.controller.metrics import ConnectionStats
from lacewing.errors import CertificateError, UsageError

__all__ = [
    "MAX_HEAD",
    "AdminRoute",
    "ControllerServer",
    "RequestHead",
    "json_response",
    "read_head",
]

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
MAX_HEAD = 16 * 1024
CLIENT_ERRORS = (TimeoutError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)
"""What a client can make a connection end with; not worth a log line."""


def json_response(status: int, body: object) -> bytes:
    """A complete HTTP/1.1 response with `body` as one line of JSON, closing the connection."""
    payload = json.dumps(body).encode() + b"\n"
    return (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload


AdminRoute = Callable[[str], tuple[int, dict[str, object]]]


@dataclass(frozen=True)
class RequestHead:
    method: str
    path: str
    """The target without its query string."""
    headers: dict[str, str]
    """Lower-cased names; a repeated header keeps its last value."""
    query: str = ""
    """The target's query string (after `?`), raw."""


async def read_head(
    reader: asyncio.StreamReader, max_head: int = MAX_HEAD
) -> RequestHead | tuple[int, dict[str, object]]:
    """The request line and headers, or the (status, JSON body) to refuse them with."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        return 431, {"error": "request head too large"}
    if len(head) > max_head:
        return 431, {"error": "request head too large"}
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3:
        return 400, {"error": "malformed request line"}
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    path, _, query = target.partition("?")
    return RequestHead(method, path, headers, query)


class ControllerServer:
    """Listener, tracked per-connection tasks and staged stop; subclasses answer connections."""

    label = "server"
    """Names the server in log lines ("identity service listening on ...")."""
    task_prefix = "conn"
    grace = 2.0
    """Default seconds `stop()` lets in-flight connections finish before cancelling them."""

    def __init__(
        self,
        host: str,
        port: int,
        tls: ssl.SSLContext | Callable[[], ssl.SSLContext] | None,
    ) -> None:
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._accepted = 0
        self._bound_port = 0
        self.stats = ConnectionStats()  # served on the admin port (lacewing.controller.admin)
        self._current: Callable[[], ssl.SSLContext] | None = None
        if isinstance(tls, ssl.SSLContext) or tls is None:
            self._listener = tls
        else:
            self._current = tls
            listener = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            listener.sni_callback = self._pick_context
            self._listener = listener

    def admin_routes(self) -> Mapping[str, AdminRoute]:
        """Extra GET paths this server offers on the component's plaintext admin port
        (`lacewing.controller.admin`): path -> handler(raw query) -> (status, JSON body)."""
        return {}

    @property
    def bound_port(self) -> int:
        """The port listened on (the real one when `port` was 0); 0 before `start()`."""
        return self._bound_port

    def _pick_context(
        self, conn: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _ctx: ssl.SSLContext
    ) -> int | None:
        assert self._current is not None
        try:
            conn.context = self._current()
        except CertificateError as exc:
            log.error("cannot serve TLS: %s", exc)
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        return None

    async def start(self) -> None:
        if self._current is not None:
            self._current()  # fail now, with the certificate's own message
        timeout = HANDSHAKE_TIMEOUT if self._listener is not None else None
        try:
            self._server = await asyncio.start_server(
                self._accept,
                self.host,
                self.port,
                ssl=self._listener,
                ssl_handshake_timeout=timeout,
            )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                hint="pick another --listen-addr",
            ) from None
        self._bound_port = int(self._server.sockets[0].getsockname()[1])
        log.info("%s listening on %s:%d", self.label, self.host, self._bound_port)

    async def stop(self, grace: float | None = None) -> None:
        grace = self.grace if grace is None else grace
        if self._server is not None:
            self._server.close()
        if self._handlers:
            pending = set(self._handlers)
            if grace > 0:
                _, pending = await asyncio.wait(pending, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._accepted += 1
        task = asyncio.get_running_loop().create_task(
            self._guarded(reader, writer, self.stats.opened()),
            name=f"{self.task_prefix}-{self._accepted}",
        )
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _guarded(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, started: float
    ) -> None:
        error: str | None = None
        try:
            await self._connection(reader, writer)
        except CLIENT_ERRORS:
            error = "client"
        except Exception:  # a bug answering one request must not take the server down
            error = "internal"
            log.exception("%s failed to answer a request", self.label)
        finally:
            self.stats.closed(started, error)
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                async with asyncio.timeout(1):
                    await writer.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError
