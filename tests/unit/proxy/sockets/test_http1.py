"""HTTP/1 through a real proxy on loopback: what a client and an application would see."""

from __future__ import annotations

import asyncio
import socket

from tests.unit.proxy.promtext import parse
from tests.unit.proxy.sockets.apps import Backend
from tests.unit.proxy.sockets.harness import Client, get, proxy

HELLO = b"GET /hello HTTP/1.1\r\nHost: web.test\r\n\r\n"


async def test_keep_alive_both_sides_and_upstream_pool_reuse() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        port = px.bound["outbound"].port
        for _ in range(2):  # two client connections, one after the other
            client = await Client.open(port)
            for _ in range(10):
                await client.send(HELLO)
                status, headers, body = await client.response()
                assert (status, body) == (200, b"hello")
                assert "connection" not in headers
            await client.close()
        assert be.requests == 20
        assert be.connections == 1, "the proxy must reuse its pooled upstream connection"


async def test_client_connection_close_is_hop_by_hop() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        client = await Client.open(px.bound["outbound"].port)
        await client.send(b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        status, headers, _ = await client.response()
        assert status == 200 and headers["connection"] == "close"
        assert headers["x-seen-connection"] == "-", "Connection must not reach the app"
        assert await client.closed_by_peer()
        await client.close()
        # the upstream connection stayed pooled: a new client reuses it
        assert (await get(px.bound["outbound"].port, HELLO))[0] == 200
        assert be.connections == 1


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        client = await Client.open(px.bound["outbound"].port)
        await client.send(
            b"GET /slow?ms=150 HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nthird"
        )
        bodies = [(await client.response())[2] for _ in range(3)]
        assert bodies == [b"slow", b"hello", b"third"]
        await client.close()


async def test_chunked_response_streams_and_http10_client_gets_it_dechunked() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        port = px.bound["outbound"].port
        status, headers, body = await get(port, b"GET /chunked?n=2000 HTTP/1.1\r\nHost: a\r\n\r\n")
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert body == b"c" * 2_000_000
        client = await Client.open(port)
        await client.send(b"GET /chunked?n=3 HTTP/1.0\r\nHost: a\r\n\r\n")
        status, headers, body = await client.response()
        assert "transfer-encoding" not in headers and headers["connection"] == "close"
        assert body == b"c" * 3000  # close-delimited
        await client.close()


async def test_http10_keep_alive_client() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        client = await Client.open(px.bound["outbound"].port)
        for _ in range(2):
            await client.send(b"GET /hello HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
            status, headers, body = await client.response()
            assert (status, body, headers["connection"]) == (200, b"hello", "keep-alive")
        await client.close()


async def test_chunked_upload_is_streamed_to_the_app() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        client = await Client.open(px.bound["outbound"].port)
        await client.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = bytearray()
        for i in range(200):
            piece = bytes([65 + i % 26]) * 5000
            sent += piece
            await client.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        await client.send(b"0\r\n\r\n")
        status, _, body = await client.response()
        assert status == 200 and body == bytes(sent)
        await client.close()


async def test_expect_100_continue() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        client = await Client.open(px.bound["outbound"].port)
        await client.send(b"POST /continue HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                          b"Expect: 100-continue\r\n\r\n")  # fmt: skip
        status, _, _ = await client.response()
        assert status == 100, "the client must get 100 Continue before sending its body"
        await client.send(b"body")
        assert (await client.response())[::2] == (200, b"body")
        await client.close()


async def test_websocket_upgrade_becomes_a_tunnel() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        client = await Client.open(px.bound["outbound"].port)
        await client.send(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                          b"Upgrade: websocket\r\n\r\n")  # fmt: skip
        status, headers, _ = await client.response()
        assert status == 101 and headers["upgrade"] == "websocket"
        for frame in (b"\x81\x05hello", b"\x82\x03\x00\x01\x02"):
            await client.send(frame)
            async with asyncio.timeout(5):
                assert await client.reader.readexactly(len(frame)) == frame
        await client.close()


async def test_malformed_request_gets_400_and_others_are_served() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        port = px.bound["outbound"].port
        status, headers, _ = await get(port, b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")
        assert status == 400 and headers["l5d-proxy-error"] == "malformed request"
        assert (await get(port, HELLO))[0] == 200


async def test_header_too_large_gets_431() -> None:
    async with Backend() as be, proxy({"LACEWING_PROXY_MAX_HEADER_BYTES": "4096"}, be.port) as px:
        port = px.bound["outbound"].port
        big = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 8000 + b"\r\n\r\n"
        assert (await get(port, big))[0] == 431
        one_huge_line = b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"
        assert (await get(port, one_huge_line))[0] == 431
        assert (await get(port, HELLO))[0] == 200
        assert be.requests == 1


async def test_refused_endpoint_gets_502() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # bound, never listening: connections are refused
        async with proxy(backend_port=closed_port) as px:
            status, headers, _ = await get(px.bound["outbound"].port, HELLO)
            assert status == 502 and headers["l5d-proxy-error"] == "connection refused"


async def test_connect_timeout_gets_504() -> None:
    # A listener with a full backlog drops SYNs, so connecting hangs: loopback only.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(3):
        f = socket.socket()
        f.setblocking(False)
        try:
            f.connect(listener.getsockname())
        except BlockingIOError:
            pass
        fillers.append(f)
    try:
        env = {"LACEWING_PROXY_CONNECT_TIMEOUT": "300ms"}
        async with proxy(env, listener.getsockname()[1]) as px:
            status, headers, _ = await get(px.bound["outbound"].port, HELLO)
            assert status == 504 and headers["l5d-proxy-error"] == "connect timeout"
    finally:
        for f in fillers:
            f.close()
        listener.close()


async def test_slow_reader_does_not_make_the_proxy_buffer() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        client = await Client.open(px.bound["outbound"].port)
        await client.send(b"GET /bytes?n=100000000 HTTP/1.1\r\nHost: a\r\n\r\n")
        await asyncio.sleep(0.5)  # the client reads nothing for a while
        side = px.sides[1]
        buffered = sum(
            c.transport.get_write_buffer_size()  # type: ignore[attr-defined]
            for c in side.conns.values()
        )
        assert buffered < 2 * 1024 * 1024, f"proxy buffered {buffered} bytes for a slow reader"
        status, _headers, body = await client.response(timeout=30)
        assert status == 200 and len(body) == 100_000_000
        await client.close()


async def test_metrics_count_requests_with_linkerd_labels() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        port = px.bound["outbound"].port
        for _ in range(3):
            await get(port, HELLO)
        missing = b"GET /missing HTTP/1.1\r\nHost: web.test\r\n\r\n"
        await get(port, missing)
        _, headers, text = await get(px.bound["admin"].port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert headers["content-type"].startswith("text/plain; version=0.0.4")
        m = parse(text.decode())
        base = {"direction": "outbound", "authority": "web.test",
                "target_addr": f"127.0.0.1:{be.port}", "tls": "disabled"}  # fmt: skip
        assert m[("request_total", base)] == 4
        ok = {**base, "status_code": "200", "classification": "success"}
        assert m[("response_total", ok)] == 3
        assert (
            m[("response_total", {**base, "status_code": "404", "classification": "success"})] == 1
        )
        assert m[("response_latency_ms_count", {**base, "status_code": "200"})] == 3
        src = {"direction": "outbound", "peer": "src", "target_addr": f"127.0.0.1:{be.port}",
               "tls": "disabled"}  # fmt: skip
        assert m[("tcp_open_total", src)] == 4
        dst = {**src, "peer": "dst"}
        assert m[("tcp_open_total", dst)] == 1 and m[("tcp_open_connections", dst)] == 1
        assert m[("tcp_read_bytes_total", src)] == 3 * len(HELLO) + len(missing)
        assert m[("process_resident_memory_bytes", {})] > 0


async def test_slow_upstream_reader_pauses_the_uploading_client() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        client = await Client.open(px.bound["outbound"].port)
        size = 30_000_000
        await client.send(
            b"POST /stall?ms=700 HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size
        )
        piece = b"u" * 65536
        sent = 0

        async def upload() -> None:
            nonlocal sent
            while sent < size:
                n = min(len(piece), size - sent)
                await client.send(piece[:n])
                sent += n

        uploading = asyncio.create_task(upload(), name="upload")
        await asyncio.sleep(0.4)  # the app is not reading yet
        assert sent < size / 2, "the client should have been held back by backpressure"
        server = next(iter(px.sides[1].conns.values()))
        up = server.active.upstream  # type: ignore[attr-defined]
        assert up.transport.get_write_buffer_size() < 2 * 1024 * 1024
        await asyncio.wait_for(uploading, 30)
        status, _, body = await client.response(timeout=30)
        assert (status, body) == (200, b"%d" % size)
        await client.close()


async def test_idle_connections_are_closed_after_the_idle_timeout() -> None:
    async with Backend() as be, proxy({"LACEWING_PROXY_IDLE_TIMEOUT": "200ms"}, be.port) as px:
        client = await Client.open(px.bound["outbound"].port)
        await client.send(HELLO)
        assert (await client.response())[0] == 200
        assert await client.closed_by_peer(timeout=2)
        await client.close()
        await asyncio.sleep(0.3)
        assert px.sides[1].pool.count() == 0, "idle pooled connections must be closed too"


async def test_connection_limit_refuses_extra_connections_and_counts_them() -> None:
    async with Backend() as be, proxy({"LACEWING_PROXY_MAX_CONNECTIONS": "2"}, be.port) as px:
        port = px.bound["outbound"].port
        kept = [await Client.open(port) for _ in range(2)]
        for c in kept:
            await c.send(HELLO)
            assert (await c.response())[0] == 200
        extra = await Client.open(port)
        try:
            assert await extra.closed_by_peer(timeout=2)
        except ConnectionResetError:
            pass
        _, _, text = await get(px.bound["admin"].port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert (
            parse(text.decode())[("outbound_tcp_errors_total", {"error": "connection_limit"})] == 1
        )
        for c in [*kept, extra]:
            await c.close()


async def test_request_on_a_pooled_connection_the_app_just_closed_is_retried() -> None:
    async with Backend(one_request_per_connection=True) as be, proxy(backend_port=be.port) as px:
        client = await Client.open(px.bound["outbound"].port)
        for _ in range(3):
            await client.send(HELLO)
            status, _, body = await client.response()
            assert (status, body) == (200, b"hello")
        assert be.connections == 3
        await client.close()


async def test_head_response_has_no_body_and_the_client_keeps_its_connection() -> None:
    async with Backend() as be, proxy(backend_port=be.port) as px:
        client = await Client.open(px.bound["outbound"].port)
        await client.send(b"HEAD /bytes?n=1000 HTTP/1.1\r\nHost: a\r\n\r\n")
        async with asyncio.timeout(5):
            head = await client.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: 1000" in head
        await client.send(HELLO)  # the next response must not be mistaken for a body
        assert (await client.response())[::2] == (200, b"hello")
        await client.close()


async def test_a_request_head_that_trickles_in_too_slowly_gets_408() -> None:
    env = {"LACEWING_PROXY_HEADER_READ_TIMEOUT": "300ms"}
    async with Backend() as be, proxy(env, be.port) as px:
        slow = await Client.open(px.bound["outbound"].port)
        await slow.send(b"GET /hello HTTP/1.1\r\nHost: a\r\n")
        await asyncio.sleep(0.1)
        await slow.send(b"X-More: 1\r\n")
        status, headers, _ = await slow.response(timeout=3)
        assert status == 408 and headers["connection"] == "close"
        await slow.close()
        # a client that sends its head at an ordinary pace is not affected
        client = await Client.open(px.bound["outbound"].port)
        for _ in range(3):
            await client.send(b"GET /hello HTTP/1.1\r\n")
            await asyncio.sleep(0.05)
            await client.send(b"Host: a\r\n\r\n")
            assert (await client.response())[0] == 200
            await asyncio.sleep(0.4)  # idle between requests is not slowness
        await client.close()
        assert be.requests == 3
