"""HTTP/2 prior knowledge through a real proxy on loopback (uvloop sockets, an h2 backend)."""

from __future__ import annotations

import asyncio

import h2.events
from tests.unit.proxy.promtext import parse
from tests.unit.proxy.sockets.h2apps import h2_backend, h2_requests
from tests.unit.proxy.sockets.harness import get, proxy


async def test_streams_of_one_h2c_connection_are_proxied_and_counted() -> None:
    async with h2_backend() as port, proxy(backend_port=port) as px:
        bodies, _ = await h2_requests(px.bound["outbound"].port, [b"/a", b"/b", b"/c"])
        assert sorted(bodies.values()) == [b"/a", b"/b", b"/c"]
        _, _, text = await get(px.bound["admin"].port, b"GET /metrics HTTP/1.1\r\n\r\n")
        m = parse(text.decode())
        route = {"direction": "outbound", "authority": "web:80",
                 "target_addr": f"127.0.0.1:{port}", "tls": "disabled"}  # fmt: skip
        assert m[("request_total", route)] == 3
        assert m[("response_total", {**route, "status_code": "200",
                                     "classification": "success"})] == 3  # fmt: skip


async def test_shutdown_sends_goaway_and_lets_the_stream_in_flight_finish() -> None:
    async with h2_backend(delay=0.3) as port, proxy(backend_port=port) as px:
        requests = asyncio.create_task(h2_requests(px.bound["outbound"].port, [b"/slow"]))
        await asyncio.sleep(0.1)
        shutdown = asyncio.create_task(px.shutdown())
        bodies, seen = await requests
        await shutdown
    assert bodies == {1: b"/slow"}
    goaways = [e for e in seen if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaways and goaways[0].error_code == 0 and goaways[0].last_stream_id == 1
