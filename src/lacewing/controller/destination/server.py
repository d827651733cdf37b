"""The destination API: one streaming HTTP endpoint, JSON lines in the Kubernetes watch style.

    GET /v1/endpoints?authority=web.shop.svc.cluster.local:80[&namespace=shop]
    -> 200, then one JSON object per line, for as long as the client stays:
       {"type":"ADDED","endpoints":[{"address":"10.42.0.7","port":8080,"weight":1,
         "identity":"web.shop.serviceaccount.identity.lacewing.cluster.local",
         "opaque":false,"labels":{"deployment":"web","namespace":"shop",...}}]}
       {"type":"REMOVED","endpoints":[{"address":"10.42.0.7","port":8080}]}
       {"type":"NO_ENDPOINTS","exists":true}
       {"type":"HEARTBEAT"}                      (every `heartbeat` seconds of silence)
    GET /ready -> 200 once a source has published, else 503.
    Bad requests -> 400 with {"error": "...", "hint": "..."}.

How it works: sources call `Hub.publish(directory)`; the hub keeps the latest Directory and
wakes every stream (an asyncio.Event replaced on each publication). A stream remembers the
set it last sent, re-resolves its authority against the new Directory and writes only the
difference (`core.discovery.diff`), so a change reaches every client within one event-loop
turn of the source noticing it. The body is delimited by the connection's end (HTTP/1.1
`Connection: close`), which curl, the proxy's client and any line reader handle.
A plain asyncio stream server with a hand-written request-line reader: the API is one GET.
Each connection's handler is tracked; `stop()` closes the listener and cancels the streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from urllib.parse import parse_qs, urlsplit

from lacewing.controller.destination.directory import Directory
from lacewing.core.discovery import (
    DEFAULT_CLUSTER_DOMAIN,
    AuthorityError,
    EndpointSet,
    NoEndpoints,
    diff,
    event_to_dict,
    parse_authority,
)
from lacewing.errors import UsageError

__all__ = ["DestinationServer", "Hub"]

log = logging.getLogger(__name__)

_MAX_HEAD = 16 * 1024
_HEAD_TIMEOUT = 10.0


class Hub:
    """The latest Directory, and a way to wait for the next one."""

    def __init__(self) -> None:
        self.directory: Directory | None = None
        self.publications = 0
        self._changed = asyncio.Event()

    def publish(self, directory: Directory) -> None:
        if directory == self.directory:
            return
        self.directory = directory
        self.publications += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, seen: int, timeout: float) -> bool:
        """Wait until a publication newer than `seen`; False on timeout."""
        if self.publications != seen:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
            return True
        return False


def _response(status: str, body: dict[str, object]) -> bytes:
    data = (json.dumps(body) + "\n").encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode() + data


class DestinationServer:
    def __init__(
        self,
        hub: Hub,
        host: str = "0.0.0.0",
        port: int = 8086,
        *,
        ssl_context: ssl.SSLContext | None = None,
        heartbeat: float = 10.0,
        cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
    ) -> None:
        self.hub, self.host, self.port = hub, host, port
        self.ssl_context, self.heartbeat = ssl_context, heartbeat
        self.cluster_domain = cluster_domain
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.bound_port = 0

    async def start(self) -> None:
        try:
            self._server = (
                await asyncio.start_server(
                    self._accept,
                    self.host,
                    self.port,
                    ssl=self.ssl_context,
                    ssl_handshake_timeout=10,
                )
                if self.ssl_context
                else await asyncio.start_server(self._accept, self.host, self.port)
            )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                hint="pick another --listen-addr",
            ) from None
        self.bound_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # stop() cancels open streams; ending the handler task normally keeps asyncio's
            # connection callback from logging the cancellation as an error.
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT)
        except asyncio.LimitOverrunError:
            writer.write(_response("431 Request Header Fields Too Large", {"error": "too big"}))
            return
        if len(head) > _MAX_HEAD:
            writer.write(_response("431 Request Header Fields Too Large", {"error": "too big"}))
            return
        method, _, rest = head.decode("latin-1").partition(" ")
        target = rest.partition(" ")[0]
        url = urlsplit(target)
        if method != "GET":
            writer.write(_response("405 Method Not Allowed", {"error": "only GET is served"}))
        elif url.path == "/ready":
            ready = self.hub.directory is not None
            status = "200 OK" if ready else "503 Service Unavailable"
            writer.write(_response(status, {"ready": ready}))
        elif url.path == "/v1/endpoints":
            await self._stream(parse_qs(url.query), writer)
        else:
            writer.write(_response("404 Not Found", {"error": f"no such path {url.path}"}))
        await writer.drain()

    async def _stream(self, query: dict[str, list[str]], writer: asyncio.StreamWriter) -> None:
        text = (query.get("authority") or [""])[0]
        namespaces = query.get("namespace")
        namespace = namespaces[0] if namespaces else None
        try:
            authority = parse_authority(
                text, default_namespace=namespace, cluster_domain=self.cluster_domain
            )
        except AuthorityError as exc:
            hint = "ask for ?authority=NAME.NAMESPACE.svc.cluster.local:PORT or IP:PORT"
            writer.write(_response("400 Bad Request", {"error": str(exc), "hint": hint}))
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        sent: EndpointSet | None = None
        sent_exists: bool | None = None
        seen = 0  # publications handled; 0 = nothing published yet
        while True:
            directory = self.hub.directory
            if directory is not None and seen != self.hub.publications:
                seen = self.hub.publications
                exists, current = directory.resolve(authority)
                events = diff(sent, current, exists=exists)
                if not current and not events and exists != sent_exists:
                    events = [NoEndpoints(exists)]
                if events:
                    lines = "".join(json.dumps(event_to_dict(e)) + "\n" for e in events)
                    writer.write(lines.encode())
                    await writer.drain()
                sent, sent_exists = current, exists
            if not await self.hub.wait(seen, self.heartbeat):
                writer.write(b'{"type":"HEARTBEAT"}\n')
                await writer.drain()
