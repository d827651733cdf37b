"""HTTP/1 between two meshed proxies on loopback travels as HTTP/2 on one mTLS connection
(`l5d-orig-proto`), and the app still sees the HTTP/1 request it was sent.

    client --HTTP/1--> proxy A outbound ==h2 over mTLS==> proxy B inbound --HTTP/1--> App
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from tests.unit.proxy.identity import test_mesh
from tests.unit.proxy.identity.pki import Pki
from tests.unit.proxy.identity.test_mesh import API, _pair, _shutdown

from lacewing.proxy.config import Addr


class App:
    """Records each request (request line, headers, body); /chunked answers chunked,
    /slow after 300 ms, anything else echoes the body with Content-Length."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.connections = 0
        self.port = 0

    async def __aenter__(self) -> App:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                line = (await reader.readline()).decode().strip()
                if not line:
                    return
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = b""
                if "content-length" in headers:
                    body = await reader.readexactly(int(headers["content-length"]))
                elif headers.get("transfer-encoding") == "chunked":
                    while (size := int((await reader.readline()).strip(), 16)) > 0:
                        body += await reader.readexactly(size)
                        await reader.readline()
                    await reader.readline()
                self.seen.append((line, headers, body))
                path = line.split()[1]
                if path == "/chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                 b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")  # fmt: skip
                else:
                    if path == "/slow":
                        await asyncio.sleep(0.3)
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s"
                                 % (len(body), body))  # fmt: skip
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.make()


@pytest.fixture(autouse=True)
def switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The translation is off by default (pooled HTTP/1 measured cheaper): these turn it on
    for the client-side proxy (a setting given explicitly, as the switched-off test's, wins)."""
    plain = test_mesh._config
    monkeypatch.setattr(test_mesh, "_config", lambda **env: plain(**{"http1_over_h2": "1", **env}))


@pytest.fixture
async def app() -> AsyncIterator[App]:
    async with App() as a:
        yield a


async def _exchange(addr: Addr, requests: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Send each request on one keep-alive connection; (head, de-chunked body) each."""
    reader, writer = await asyncio.open_connection(addr.host, addr.port)
    out = []
    try:
        for request in requests:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lower = head.lower()
            if b"transfer-encoding: chunked" in lower:
                body = b""
                while (size := int((await reader.readline()).strip(), 16)) > 0:
                    body += await reader.readexactly(size)
                    await reader.readline()
                await reader.readline()
            else:
                length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
            out.append((head, body))
    finally:
        writer.close()
    return out


POST = b"POST /echo HTTP/1.1\r\nHost: api.shop:80\r\nContent-Length: 9\r\n\r\npost-body"
CHUNKED_POST = (b"POST /echo HTTP/1.1\r\nHost: api.shop:80\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n")  # fmt: skip
GET_CHUNKED = b"GET /chunked HTTP/1.1\r\nHost: api.shop:80\r\n\r\n"
SLOW = b"GET /slow HTTP/1.1\r\nHost: api.shop:80\r\n\r\n"


async def test_http1_requests_travel_as_h2_streams_on_one_mtls_connection(
    pki: Pki, app: App
) -> None:
    mesh = await _pair(pki, app, API)  # type: ignore[arg-type]
    try:
        outbound = mesh.client.bound["outbound"]
        answers = await _exchange(outbound, [POST, CHUNKED_POST, GET_CHUNKED])
        assert [body for _, body in answers] == [b"post-body", b"abcdef", b"hello world"]
        assert all(head.startswith(b"HTTP/1.1 200 OK\r\n") for head, _ in answers)
        assert b"transfer-encoding: chunked" in answers[2][0].lower()  # no length upstream
        # four clients with a slow request in flight at once: still one mTLS connection
        slow = await asyncio.gather(*(_exchange(outbound, [SLOW, POST]) for _ in range(4)))
        assert all(a[1][1] == b"post-body" for a in slow)
        assert mesh.connector.handshakes == 1
        assert mesh.terminator.handshakes == 1
        lines = [line for line, _, _ in app.seen]
        assert lines[:3] == ["POST /echo HTTP/1.1", "POST /echo HTTP/1.1",
                             "GET /chunked HTTP/1.1"]  # fmt: skip
        assert all(h.get("host") == "api.shop:80" for _, h, _ in app.seen)
        assert not any("l5d-orig-proto" in h for _, h, _ in app.seen)
        assert app.seen[0][2] == b"post-body" and app.seen[1][2] == b"abcdef"
        server_metrics = "\n".join(mesh.server.metrics.render())
        inbound = [m for m in server_metrics.splitlines()
                   if m.startswith("request_total{") and 'direction="inbound"' in m]  # fmt: skip
        assert inbound and all('tls="true"' in m and "client_id=" in m for m in inbound)
        assert sum(float(m.rsplit(" ", 1)[1]) for m in inbound) == 11
    finally:
        await _shutdown(mesh)


async def test_http10_client_gets_http10_framing(pki: Pki, app: App) -> None:
    mesh = await _pair(pki, app, API)  # type: ignore[arg-type]
    try:
        outbound = mesh.client.bound["outbound"]
        reader, writer = await asyncio.open_connection(outbound.host, outbound.port)
        writer.write(b"GET /chunked HTTP/1.0\r\nHost: api.shop:80\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 10)  # close-delimited: read to the end
        writer.close()
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nhello world")
        assert b"chunked" not in data.lower()
        assert app.seen[0][0] == "GET /chunked HTTP/1.0"
    finally:
        await _shutdown(mesh)


async def test_switched_off_http1_stays_pooled_http1(
    pki: Pki, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = test_mesh._config
    monkeypatch.setattr(test_mesh, "_config", lambda **env: plain(http1_over_h2="0", **env))
    mesh = await test_mesh._pair(pki, app, API)  # type: ignore[arg-type]
    try:
        outbound = mesh.client.bound["outbound"]
        slow = await asyncio.gather(*(_exchange(outbound, [SLOW, POST]) for _ in range(4)))
        assert all(a[1][1] == b"post-body" for a in slow)
        assert mesh.connector.handshakes == 4  # one pooled mTLS connection per request in flight
    finally:
        await _shutdown(mesh)


async def test_app_gone_is_a_502_with_the_proxy_error(pki: Pki) -> None:
    async with App() as app:
        port = app.port
    mesh = await _pair(pki, app, API, backend_port=port)  # type: ignore[arg-type]
    try:
        outbound = mesh.client.bound["outbound"]
        reader, writer = await asyncio.open_connection(outbound.host, outbound.port)
        writer.write(b"GET /x HTTP/1.1\r\nHost: api.shop:80\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
        assert head.startswith(b"HTTP/1.1 502 ") and b"l5d-proxy-error:" in head.lower()
        assert mesh.connector.handshakes == 1
    finally:
        await _shutdown(mesh)


async def test_server_proxy_gone_is_a_502_from_the_client_side(pki: Pki, app: App) -> None:
    mesh = await _pair(pki, app, API)  # type: ignore[arg-type]
    try:
        outbound = mesh.client.bound["outbound"]
        assert (await _exchange(outbound, [POST]))[0][1] == b"post-body"
        await mesh.server.shutdown()  # the pooled h2 connection goes, and nothing listens
        for _ in range(2):
            reader, writer = await asyncio.open_connection(outbound.host, outbound.port)
            writer.write(POST)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.close()
            assert head.startswith(b"HTTP/1.1 502 ") and b"l5d-proxy-error:" in head.lower()
        responses = [m for m in mesh.client.metrics.render() if m.startswith("response_total{")]
        assert sum(float(m.rsplit(" ", 1)[1]) for m in responses) == 3  # each counted once
    finally:
        await mesh.client.shutdown()
