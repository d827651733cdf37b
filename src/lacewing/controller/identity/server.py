"""The identity service over HTTPS: `POST /v1/certify`, `GET /ready`, nothing else.

Transport only; every decision is `IdentityService.certify`'s. The server is a plain asyncio
stream server with a hand-written HTTP/1.1 reader (one request per connection, answered with
`Connection: close`): certify traffic is one request per proxy every ~17 hours, and the
protocol stays curl-able:

    NAME=lacewing-identity.lacewing.serviceaccount.identity.lacewing.cluster.local
    curl --cacert ca.crt --resolve $NAME:8080:127.0.0.1 https://$NAME:8080/v1/certify \\
         -d '{"identity": "...", "token": "...", "csr": "..."}'

Its own certificate is issued in-process by the same issuer for
`lacewing-identity.<namespace>.serviceaccount.identity.lacewing.<td>` (its service account's
identity, which destination announces for its pods), with a key that stays in memory.
The listening context picks the serving context per handshake (SNI callback), and before
each handshake re-issues the server certificate if the issuer changed on disk or 70% of the
certificate's life has passed, so a rotated issuer is served without a restart.

Listening, the per-handshake context switch, the tracked connection tasks and the staged
`stop()` (stop accepting, a grace period for in-flight requests, cancel the rest) are
`lacewing.controller.https.ControllerServer`'s.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from datetime import datetime

from cryptography.hazmat.primitives import serialization

from lacewing.controller.https import ControllerServer, RequestHead, json_response, read_head
from lacewing.controller.identity.service import IdentityService
from lacewing.core.identity import Identity
from lacewing.proxy.identity.credentials import load_chain_in_memory, make_csr, new_private_key
from lacewing.tls.issuance import Issuer, issue_leaf

__all__ = ["IdentityServer"]

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


class IdentityServer(ControllerServer):
    label = "identity service"
    task_prefix = "identity-conn"

    def __init__(
        self,
        service: IdentityService,
        server_identity: Identity,
        host: str = "0.0.0.0",
        port: int = 8080,
    ) -> None:
        self.service = service
        self.cert = _ServingCert(service, server_identity)
        # start() refreshes once first: no issuer fails there, with the issuer's message.
        super().__init__(host, port, self.cert.refresh)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(_REQUEST_TIMEOUT):
            status, body = await self._respond(reader)
        writer.write(json_response(status, body))
        await writer.drain()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, object]]:
        head = await read_head(reader)
        if not isinstance(head, RequestHead):
            return head
        method, path = head.method, head.path
        if path == "/ready":
            return (200, {"status": "ready"}) if method == "GET" else (405, {"error": "use GET"})
        if path != "/v1/certify":
            return 404, {"error": f"no such endpoint {path}; use POST /v1/certify"}
        if method != "POST":
            return 405, {"error": "use POST /v1/certify"}
        length_text = head.headers.get("content-length", "")
        if not (length_text.isascii() and length_text.isdigit()):  # "²".isdigit() is True
            return 411, {"error": "a Content-Length header is required"}
        length = int(length_text)
        if length > _MAX_BODY:
            return 413, {"error": f"body larger than {_MAX_BODY} bytes"}
        raw = await reader.readexactly(length)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: arrays nested ~1,000 deep
            return 400, {"error": "the body is not JSON"}
        result = await self.service.certify(body)
        return result.status, result.body
