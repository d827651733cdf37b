"""The proxy injector's HTTPS server: `POST /` or `/inject` (AdmissionReview), `GET /ready`.

How it works: a plain asyncio stream server with TLS, one request per connection (answered
with `Connection: close`; the API server opens a new connection per call when told to).
The request head is read up to a bound, the body by `Content-Length` up to `MAX_BODY`
(the API server's own limit on a request is 3 MiB), and the body goes to
`Admission.review`; whatever it returns is written back as JSON. Anything the server cannot
read (no Content-Length, a head too large, a method or path it does not serve) is a 4xx with
a one-line JSON error, never a crashed handler.

The certificate is `tls.crt` / `tls.key` in `tls_dir`, the Secret `install` made and the
Deployment mounts. Before each handshake the files' modification times are compared with the
loaded ones (an SNI callback), so a certificate rotated by `lacewing upgrade` is served
without a restart.

Each connection's handler task is tracked and named; `stop()` stops accepting, gives in-flight
requests a grace period, then cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from http import HTTPStatus
from pathlib import Path

from lacewing.controller.injector.admission import Admission, Reply
from lacewing.errors import CertificateError, UsageError

__all__ = ["MAX_BODY", "InjectorServer", "TlsFiles"]

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024
MAX_BODY = 8 * 1024 * 1024
REQUEST_TIMEOUT = 10.0
REVIEW_PATHS = ("/", "/inject")


class TlsFiles:
    """`tls.crt` and `tls.key` in a directory, reloaded when either file changes."""

    def __init__(self, tls_dir: Path) -> None:
        self.cert, self.key = tls_dir / "tls.crt", tls_dir / "tls.key"
        self._stamp: tuple[int, int] | None = None
        self._context: ssl.SSLContext | None = None
        self.loads = 0

    def context(self) -> ssl.SSLContext:
        try:
            stamp = (self.cert.stat().st_mtime_ns, self.key.stat().st_mtime_ns)
        except OSError as exc:
            raise CertificateError(
                f"cannot read the webhook certificate in {self.cert.parent}: {exc.strerror}",
                hint="mount the lacewing-proxy-injector-k8s-tls Secret there (--tls-dir)",
            ) from None
        if self._context is None or stamp != self._stamp:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                context.load_cert_chain(self.cert, self.key)
            except (ssl.SSLError, OSError) as exc:
                raise CertificateError(
                    f"the webhook certificate in {self.cert.parent} cannot be used: {exc}",
                    hint="re-create it: lacewing upgrade | kubectl apply -f -",
                ) from None
            self._context, self._stamp = context, stamp
            self.loads += 1
        return self._context


class InjectorServer:
    def __init__(
        self, admission: Admission, tls: TlsFiles, host: str = "0.0.0.0", port: int = 8443
    ) -> None:
        self.admission = admission
        self.tls = tls
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        listener = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        listener.sni_callback = self._pick_context
        self._listener = listener
        self._served = 0

    @property
    def bound_port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    def _pick_context(
        self, conn: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _ctx: ssl.SSLContext
    ) -> int | None:
        try:
            conn.context = self.tls.context()
        except CertificateError as exc:
            log.error("cannot serve TLS: %s", exc)
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        return None

    async def start(self) -> None:
        self.tls.context()  # fail now, with one line, if the certificate is unusable
        try:
            self._server = await asyncio.start_server(
                self._handle, self.host, self.port, ssl=self._listener, ssl_handshake_timeout=10
            )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                hint="pick another --listen-addr",
            ) from None
        log.info("proxy injector listening on %s:%d", self.host, self.bound_port)

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

    async def serve_until(self, stopping: asyncio.Event) -> None:
        await self.start()
        try:
            await stopping.wait()
        finally:
            await self.stop()

    def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._served += 1
        task = asyncio.get_running_loop().create_task(
            self._connection(reader, writer), name=f"injector-conn-{self._served}"
        )
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                reply = await self._respond(reader)
            payload = json.dumps(reply.body).encode() + b"\n"
            phrase = HTTPStatus(reply.status).phrase
            writer.write(
                f"HTTP/1.1 {reply.status} {phrase}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug answering one request must not take the server down
            log.exception("proxy injector failed to answer a request")
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                async with asyncio.timeout(1):
                    await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> Reply:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return Reply(431, {"error": "request head too large"})
        if len(head) > MAX_HEAD:
            return Reply(431, {"error": "request head too large"})
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3:
            return Reply(400, {"error": "malformed request line"})
        method, target, _ = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        path = target.split("?", 1)[0]
        if path in ("/ready", "/live"):
            return (
                Reply(200, {"status": "ok"})
                if method == "GET"
                else Reply(405, {"error": "use GET"})
            )
        if path not in REVIEW_PATHS:
            return Reply(404, {"error": f"no such path {path}; POST AdmissionReviews to /"})
        if method != "POST":
            return Reply(405, {"error": "POST an AdmissionReview"})
        length = headers.get("content-length", "")
        if not length.isdigit():
            return Reply(411, {"error": "Content-Length is required"})
        if int(length) > MAX_BODY:
            return Reply(413, {"error": f"the body exceeds {MAX_BODY} bytes"})
        body = await reader.readexactly(int(length))
        return await self.admission.review(body)
