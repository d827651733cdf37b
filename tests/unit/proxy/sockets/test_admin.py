"""The admin server and staged shutdown of a real proxy on loopback."""

from __future__ import annotations

import asyncio

from tests.unit.proxy.sockets.apps import Backend
from tests.unit.proxy.sockets.harness import LOOPBACK, Client, get, proxy

from lacewing.proxy.admin import _is_loopback
from lacewing.proxy.config import load
from lacewing.proxy.server import ProxyServer


async def test_ready_live_and_unknown_paths() -> None:
    async with proxy() as px:
        admin = px.bound["admin"].port
        assert (await get(admin, b"GET /ready HTTP/1.1\r\n\r\n"))[0] == 200
        assert (await get(admin, b"GET /live HTTP/1.1\r\n\r\n"))[0] == 200
        assert (await get(admin, b"GET /nope HTTP/1.1\r\n\r\n"))[0] == 404
        assert (await get(admin, b"GET /shutdown HTTP/1.1\r\n\r\n"))[0] == 405
        assert px.ready, "a GET must not shut the proxy down"


def test_shutdown_is_for_loopback_peers_only() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("::ffff:127.0.0.1")
    assert not _is_loopback("10.0.0.7") and not _is_loopback("")


async def test_post_shutdown_drains_an_in_flight_slow_request() -> None:
    async with Backend() as be:
        env = {**LOOPBACK, "LACEWING_PROXY_OUTBOUND_FIXED_DST": f"127.0.0.1:{be.port}"}
        server = ProxyServer(load(env))
        running = asyncio.create_task(server.run(), name="proxy-under-test")
        try:
            while not server.ready:
                await asyncio.sleep(0.01)
            port, admin = server.bound["outbound"].port, server.bound["admin"].port
            idle = await Client.open(port)  # an idle keep-alive client is closed at once
            await idle.send(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
            await idle.response()
            slow = await Client.open(port)
            await slow.send(b"GET /slow?ms=600 HTTP/1.1\r\nHost: a\r\n\r\n")
            await asyncio.sleep(0.1)
            assert (await get(admin, b"POST /shutdown HTTP/1.1\r\n\r\n"))[0] == 200
            assert await idle.closed_by_peer(timeout=2)
            status, headers, body = await slow.response(timeout=5)
            assert (status, body) == (200, b"slow"), "the in-flight request must finish"
            assert headers["connection"] == "close"
            async with asyncio.timeout(5):
                await running
            try:
                await asyncio.open_connection("127.0.0.1", port)
                raise AssertionError("the proxy still accepts connections after shutdown")
            except OSError:
                pass
            await idle.close()
            await slow.close()
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


async def test_shutdown_deadline_cuts_what_is_left() -> None:
    async with Backend() as be:
        env = {**LOOPBACK, "LACEWING_PROXY_OUTBOUND_FIXED_DST": f"127.0.0.1:{be.port}",
               "LACEWING_PROXY_SHUTDOWN_GRACE_PERIOD": "200ms"}  # fmt: skip
        server = ProxyServer(load(env))
        await server.start()
        slow = await Client.open(server.bound["outbound"].port)
        await slow.send(b"GET /slow?ms=5000 HTTP/1.1\r\nHost: a\r\n\r\n")
        await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await server.shutdown()
        assert loop.time() - start < 2
        assert await slow.closed_by_peer(timeout=2)
        await slow.close()
