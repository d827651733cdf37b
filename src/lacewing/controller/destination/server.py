"""The destination API: one streaming HTTP endpoint, JSON lines in the Kubernetes watch style.

    GET /v1/endpoints?authority=web.shop.svc.cluster.local:80[&namespace=shop]
    -> 200, then one JSON object per line, for as long as the client stays:
       {"type":"ADDED","endpoints":[{"address":"10.42.0.7","port":8080,"weight":1,
         "identity":"web.shop.serviceaccount.identity.lacewing.cluster.local",
         "opaque":false,"labels":{"deployment":"web","namespace":"shop",...}}]}
       {"type":"REMOVED","endpoints":[{"address":"10.42.0.7","port":8080}]}
       {"type":"NO_ENDPOINTS","exists":true}
       {"type":"ROUTES","routes":[{"apiVersion":"gateway.networking.k8s.io/v1",
         "kind":"HTTPRoute",...}]}            the Service's accepted HTTPRoutes, whole
       {"type":"HEARTBEAT"}                      (every `heartbeat` seconds of silence)
    GET /ready -> 200 once a source has published, else 503.
    Bad requests -> 400 with {"error": "...", "hint": "..."}.

How it works: sources call `Hub.publish(directory)`; the hub keeps the latest Directory and
wakes every stream (an asyncio.Event replaced on each publication). A stream remembers the
set it last sent, re-resolves its authority against the new Directory and writes only the
difference (`core.discovery.diff`), so a change reaches every client within one event-loop
turn of the source noticing it. The body is delimited by the connection's end (HTTP/1.1
`Connection: close`), which curl, the proxy's client and any line reader handle.
A ROUTES event comes before the endpoint events of the same publication, and only when the
Service's routes differ from what the stream last sent; a stream's first publication sends it
only when there are routes, so a client takes "no ROUTES before the first endpoint event" as
"no routes" (and streams of Services without routes look as they always did).
A plain asyncio stream server with a hand-written request-line reader: the API is one GET.
The listener and the tracked stream tasks are `lacewing.controller.https.ControllerServer`'s;
`stop()` closes the listener and cancels the streams at once (no grace: they never end).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from urllib.parse import parse_qs, urlsplit

from lacewing.controller.destination.directory import Directory
from lacewing.controller.https import MAX_HEAD, ControllerServer, json_response
from lacewing.core.discovery import (
    DEFAULT_CLUSTER_DOMAIN,
    AuthorityError,
    EndpointSet,
    NoEndpoints,
    diff,
    event_to_dict,
    parse_authority,
)

__all__ = ["DestinationServer", "Hub"]

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


class DestinationServer(ControllerServer):
    label = "destination"
    task_prefix = "destination-stream"
    grace = 0.0  # streams never end on their own: stop() cancels them at once

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
        # The mTLS context is used as is, not switched per handshake: it requires client certs.
        super().__init__(host, port, ssl_context)
        self.hub, self.ssl_context, self.heartbeat = hub, ssl_context, heartbeat
        self.cluster_domain = cluster_domain

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT)
        except asyncio.LimitOverrunError:
            writer.write(json_response(431, {"error": "too big"}))
            return
        if len(head) > MAX_HEAD:
            writer.write(json_response(431, {"error": "too big"}))
            return
        method, _, rest = head.decode("latin-1").partition(" ")
        target = rest.partition(" ")[0]
        url = urlsplit(target)
        if method != "GET":
            writer.write(json_response(405, {"error": "only GET is served"}))
        elif url.path == "/ready":
            ready = self.hub.directory is not None
            writer.write(json_response(200 if ready else 503, {"ready": ready}))
        elif url.path == "/v1/endpoints":
            await self._stream(parse_qs(url.query), writer)
        else:
            writer.write(json_response(404, {"error": f"no such path {url.path}"}))
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
            writer.write(json_response(400, {"error": str(exc), "hint": hint}))
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        sent: EndpointSet | None = None
        sent_exists: bool | None = None
        sent_routes: tuple[str, ...] = ()
        seen = 0  # publications handled; 0 = nothing published yet
        while True:
            directory = self.hub.directory
            if directory is not None and seen != self.hub.publications:
                seen = self.hub.publications
                exists, current = directory.resolve(authority)
                routes = directory.routes_for(authority)
                labels = directory.labels_for(authority) if not current else None
                events = diff(sent, current, exists=exists, labels=labels)
                if not current and not events and exists != sent_exists:
                    events = [NoEndpoints(exists, tuple(sorted((labels or {}).items())))]
                lines = "".join(json.dumps(event_to_dict(e)) + "\n" for e in events)
                if routes != sent_routes:
                    lines = '{"type":"ROUTES","routes":[' + ",".join(routes) + "]}\n" + lines
                    sent_routes = routes
                if lines:
                    writer.write(lines.encode())
                    await writer.drain()
                sent, sent_exists = current, exists
            if not await self.hub.wait(seen, self.heartbeat):
                writer.write(b'{"type":"HEARTBEAT"}\n')
                await writer.drain()
