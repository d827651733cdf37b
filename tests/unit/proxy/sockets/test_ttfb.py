"""response_latency_ms is time to first byte, as Linkerd's: an app that sends its response head
at once and its body 300 ms later is counted at the body, and a bodiless answer at its end."""

from __future__ import annotations

import asyncio

from tests.unit.proxy.promtext import parse
from tests.unit.proxy.sockets.harness import get, proxy

HEAD_FIRST = 0.3  # seconds between the app's head and its body


async def _slow_body_app() -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (head := await reader.readuntil(b"\r\n\r\n")) and b"/empty" not in head:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(HEAD_FIRST)
            writer.write(b"hello")
            await writer.drain()
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def test_latency_waits_for_the_first_body_byte() -> None:
    app = await _slow_body_app()
    port = app.sockets[0].getsockname()[1]
    async with app, proxy(backend_port=port) as px:
        out = px.bound["outbound"].port
        status, _, body = await get(out, b"GET /slow HTTP/1.1\r\nHost: web.test\r\n\r\n")
        assert (status, body) == (200, b"hello")
        status, _, body = await get(out, b"GET /empty HTTP/1.1\r\nHost: web.test\r\n\r\n")
        assert (status, body) == (204, b"")
        _, _, text = await get(px.bound["admin"].port, b"GET /metrics HTTP/1.1\r\n\r\n")
    m = parse(text.decode())
    base = {"direction": "outbound", "authority": "web.test", "target_addr": f"127.0.0.1:{port}",
            "tls": "disabled"}  # fmt: skip
    slow = {**base, "status_code": "200"}
    assert m[("response_latency_ms_count", slow)] == 1
    assert m[("response_latency_ms_sum", slow)] >= HEAD_FIRST * 1000 * 0.95  # not the head's
    assert m[("response_latency_ms_bucket", {**slow, "le": "200"})] == 0
    assert m[("response_total", {**slow, "classification": "success"})] == 1
    empty = {**base, "status_code": "204"}
    assert m[("response_latency_ms_count", empty)] == 1
    assert m[("response_latency_ms_sum", empty)] < HEAD_FIRST * 1000
