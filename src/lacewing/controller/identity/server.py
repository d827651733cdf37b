"""The identity service over HTTPS: `POST /v1/certify`, `GET /ready`, nothing else.

Transport only; every decision is `IdentityService.certify`'s. The server is a plain asyncio
stream server with a hand-written HTTP/1.1 reader (one request per connection, answered with
`Connection: close`): certify traffic is one request per proxy every ~17 hours, and the
protocol stays curl-able:

    NAME=identity.lacewing.serviceaccount.identity.lacewing.cluster.local
    curl --cacert ca.crt --resolve $NAME:8080:127.0.0.1 https://$NAME:8080/v1/certify \\
         -d '{"identity": "...", "token": "...", "csr": "..."}'

Its own certificate is issued in-process by the same issuer for
`identity.<namespace>.serviceaccount.identity.lacewing.<td>`, with a key that stays in memory.
The listening context picks the serving context per handshake (SNI callback), and before
each handshake re-issues the server certificate if the issuer changed on disk or 70% of the
certificate's life has passed, so a rotated issuer is served without a restart.

Each connection's handler is tracked; `stop()` stops accepting, gives in-flight requests a
grace period, then cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus

from cryptography.hazmat.primitives import serialization

from lacewing.controller.identity.service import IdentityService
from lacewing.core.identity import Identity
from lacewing.errors import CertificateError, UsageError
from lacewing.proxy.identity.credentials import load_chain_in_memory, make_csr, new_private_key
from lacewing.tls.issuance import Issuer, issue_leaf

__all__ = ["IdentityServer"]

log = logging.getLogger(__name__)

_MAX_HEAD = 16 * 1024
_MAX_BODY = 64 * 1024
_REQUEST_TIMEOUT = 10.0


class _ServingCert:
    """The server's own certificate, re-issued when the issuer changes or it ages."""

    def __init__(self, service: IdentityService, identity: Identity) -> None:
        self.service, self.identity = service, identity
        self._key = new_private_key()
        self._csr = make_csr(self._key, identity)
        self._issuer: Issuer | None = None
        self._renew_after: datetime | None = None
        self.context: ssl.SSLContext | None = None
        self.issued = 0

    def refresh(self) -> ssl.SSLContext:
        issuer = self.service.issuer()  # raises CertificateError if there never was one
        now = self.service.now()
        stale = self._renew_after is None or now >= self._renew_after
        if self.context is None or issuer is not self._issuer or stale:
            leaf = issue_leaf(
                self._csr,
                self.identity,
                issuer,
                now=now,
                lifetime=self.service.lifetime,
                clock_skew=self.service.clock_skew,
            )
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            pem = (leaf.leaf_pem + "".join(leaf.chain_pem)).encode()
            key = self._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            load_chain_in_memory(context, pem, key)
            self.context, self._issuer = context, issuer
            self._renew_after = now + (leaf.valid_until - now) * 0.7
            self.issued += 1
        assert self.context is not None
        return self.context


class IdentityServer:
    def __init__(
        self,
        service: IdentityService,
        server_identity: Identity,
        host: str = "0.0.0.0",
        port: int = 8080,
    ) -> None:
        self.service = service
        self.host, self.port = host, port
        self.cert = _ServingCert(service, server_identity)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        listener = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        listener.sni_callback = self._pick_context
        self._listener = listener

    @property
    def bound_port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    def _pick_context(
        self, conn: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _ctx: ssl.SSLContext
    ) -> int | None:
        try:
            conn.context = self.cert.refresh()
        except CertificateError as exc:
            log.error("cannot serve TLS: %s", exc)
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        return None

    async def start(self) -> None:
        self.cert.refresh()  # fail now, with the issuer's message, if there is no issuer
        try:
            self._server = await asyncio.start_server(
                self._handle, self.host, self.port, ssl=self._listener, ssl_handshake_timeout=10
            )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                hint="pick another --listen-addr",
            ) from None
        log.info("identity service listening on %s:%d", self.host, self.bound_port)

    async def stop(self, grace: float = 2.0) -> None:
        if self._server is not None:
            self._server.close()
        if self._handlers:
            _, pending = await asyncio.wait(set(self._handlers), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(
        self, stopping: Callable[[], asyncio.Future[None]] | None = None
    ) -> None:
        await self.start()
        try:
            await (stopping() if stopping else asyncio.get_running_loop().create_future())
        finally:
            await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                status, body = await self._respond(reader)
            payload = json.dumps(body).encode() + b"\n"
            phrase = HTTPStatus(status).phrase
            writer.write(
                f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                async with asyncio.timeout(1):
                    await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, object]]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return 431, {"error": "request head too large"}
        if len(head) > _MAX_HEAD:
            return 431, {"error": "request head too large"}
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3:
            return 400, {"error": "malformed request line"}
        method, target, _ = parts
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        path = target.split("?", 1)[0]
        if path == "/ready":
            return (200, {"status": "ready"}) if method == "GET" else (405, {"error": "use GET"})
        if path != "/v1/certify":
            return 404, {"error": f"no such endpoint {path}; use POST /v1/certify"}
        if method != "POST":
            return 405, {"error": "use POST /v1/certify"}
        length_text = headers.get("content-length", "")
        if not length_text.isdigit():
            return 411, {"error": "a Content-Length header is required"}
        length = int(length_text)
        if length > _MAX_BODY:
            return 413, {"error": f"body larger than {_MAX_BODY} bytes"}
        raw = await reader.readexactly(length)
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": "the body is not JSON"}
        result = await self.service.certify(body)
        return result.status, result.body
