"""The tap listener (port 4190): mutual TLS, an allow-list of client identities, JSON lines.

One request per connection, HTTP/1.1 over mutual TLS from the proxy's own certificate
(`TlsHolder.listener_context`: a client certificate from the mesh's trust anchors is
required, so plaintext and foreign certificates fail the handshake):

    POST /tap HTTP/1.1            body: the filter (`tap.filter.parse_filter`)
    -> 200, application/x-ndjson, then one `encode_event` line per matching exchange,
       `{"dropped": N}` lines (at most once a second) when events were lost, and a last
       `{"end": {...}}` line when the filter's `max` was reached; the stream ends then, or
       when the client closes.
    -> 403 {"error": ...} for a verified client whose identity the tap policy does not allow
    -> 400 {"error": ...} for a bad request

The handler reads nothing from the data path: it waits on an asyncio event that the hub's
`Tap.wake` sets, then writes what the tap's bounded queue holds. Connections are owned by
the server (`close` cancels and awaits them). This module is imported only when a meshed
proxy starts its tap listener; the hub and filter modules only at the first tap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lacewing.proxy.identity.verify import peer_identity
from lacewing.proxy.transport import listen_socket

if TYPE_CHECKING:
    from lacewing.proxy.metrics.proxy import TapPoint
    from lacewing.proxy.tap.hub import Tap, TapHub

__all__ = ["MAX_REQUEST", "TapServer", "default_allowed"]

log = logging.getLogger(__name__)
MAX_REQUEST = 16 * 1024
REPORT_DROPS_EVERY = 1.0


def default_allowed(trust_domain: str) -> tuple[str, ...]:
    """The tap policy without configuration: only the viz tap component's identity."""
    return (f"tap.lacewing-viz.serviceaccount.identity.lacewing.{trust_domain}",)


def _response(status: str, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode() + b"\n"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode() + data


class TapServer:
    def __init__(self, point: TapPoint, context: Callable[[], ssl.SSLContext],
                 allowed: tuple[str, ...], local: dict[str, str]) -> None:  # fmt: skip
        self.point = point
        self.context = context
        self.allowed = frozenset(allowed)
        self.local = local
        self._hub: TapHub | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> asyncio.Server:
        sock = listen_socket(host, port)  # (no getaddrinfo for an address: transport.listen)
        where = {"sock": sock} if sock is not None else {"host": host, "port": port}
        self._server = await asyncio.start_server(
            self._spawn, **where, ssl=self.context(), ssl_handshake_timeout=5.0
        )
        return self._server

    def _spawn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer), name="tap")
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    def hub(self) -> TapHub:
        if self._hub is None:
            from lacewing.proxy.tap.hub import TapHub

            self._hub = TapHub(self.point, self.local)
        return self._hub

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle(reader, writer)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception:  # a bug: log it, never take the proxy down
            log.exception("tap connection failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from lacewing.proxy.tap.filter import TapRequestError, parse_filter
        from lacewing.proxy.tap.hub import Tap

        client = peer_identity(writer)
        name = client.name if client is not None else None
        if name is None or name not in self.allowed:
            writer.write(_response("403 Forbidden", {
                "error": f"tap: client identity {name or '(none)'} is not allowed by the "
                         "tap policy",
                "allowed": sorted(self.allowed),
            }))  # fmt: skip
            await writer.drain()
            return
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
        if len(head) > MAX_REQUEST:
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        length = 0
        for line in lines[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
        if len(parts) != 3 or parts[0] != "POST" or parts[1] != "/tap" or length > MAX_REQUEST:
            writer.write(
                _response("400 Bad Request", {"error": "tap: POST /tap with a JSON filter"})
            )
            await writer.drain()
            return
        body = await asyncio.wait_for(reader.readexactly(length), 10.0) if length else b""
        try:
            tap_filter = parse_filter(body)
        except TapRequestError as exc:
            writer.write(_response("400 Bad Request", {"error": str(exc)}))
            await writer.drain()
            return
        wake = asyncio.Event()
        tap = Tap(tap_filter, wake.set)
        hub = self.hub()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n"
        )
        hub.open(tap)
        gone = asyncio.ensure_future(reader.read(1))  # the client closing ends the tap
        try:
            await self._stream(tap, wake, gone, writer)
        finally:
            hub.close(tap)
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await gone

    async def _stream(self, tap: Tap, wake: asyncio.Event, gone: asyncio.Future[bytes],
                      writer: asyncio.StreamWriter) -> None:  # fmt: skip
        from lacewing.proxy.tap.filter import encode_event

        reported, reported_at = 0, 0.0
        while True:
            waiting: asyncio.Future[Any] = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait([waiting, gone], timeout=REPORT_DROPS_EVERY,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finally:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
            if gone.done():
                return
            wake.clear()
            queue = tap.queue
            out = [encode_event(queue.popleft()) for _ in range(len(queue))]
            now = time.monotonic()
            if tap.dropped != reported and now - reported_at >= REPORT_DROPS_EVERY:
                reported, reported_at = tap.dropped, now
                out.append(json.dumps({"dropped": reported}).encode() + b"\n")
            if tap.done:
                out.append(json.dumps({"end": {"events": tap.taken, "dropped": tap.dropped}})
                           .encode() + b"\n")  # fmt: skip
            if out:
                writer.write(b"".join(out))
                await writer.drain()
            if tap.done:
                return

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
