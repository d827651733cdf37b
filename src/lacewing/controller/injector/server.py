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

Listening, the per-handshake context switch, the tracked and named connection tasks and the
staged `stop()` (stop accepting, a grace period for in-flight requests, cancel the rest) are
`lacewing.controller.https.ControllerServer`'s.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from lacewing.controller.https import ControllerServer, RequestHead, json_response, read_head
from lacewing.controller.injector.admission import Admission, Reply
from lacewing.errors import CertificateError

__all__ = ["MAX_BODY", "InjectorServer", "TlsFiles"]

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


class InjectorServer(ControllerServer):
    label = "proxy injector"
    task_prefix = "injector-conn"

    def __init__(
        self, admission: Admission, tls: TlsFiles, host: str = "0.0.0.0", port: int = 8443
    ) -> None:
        self.admission = admission
        self.tls = tls
        # start() loads the files once first: an unusable certificate fails there, in one line.
        super().__init__(host, port, tls.context)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            reply = await self._respond(reader)
        writer.write(json_response(reply.status, reply.body))
        await writer.drain()

    async def _respond(self, reader: asyncio.StreamReader) -> Reply:
        head = await read_head(reader)
        if not isinstance(head, RequestHead):
            return Reply(*head)
        method, path = head.method, head.path
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
        length = head.headers.get("content-length", "")
        if not length.isdigit():
            return Reply(411, {"error": "Content-Length is required"})
        if int(length) > MAX_BODY:
            return Reply(413, {"error": f"the body exceeds {MAX_BODY} bytes"})
        body = await reader.readexactly(int(length))
        return await self.admission.review(body)
