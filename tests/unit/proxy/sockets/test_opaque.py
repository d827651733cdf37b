"""Non-HTTP traffic through a real proxy on loopback: opaque ports, detection, pass-through."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator

from tests.unit.proxy.promtext import parse
from tests.unit.proxy.sockets.harness import get, proxy


@contextlib.asynccontextmanager
async def echo_server(greeting: bytes = b"") -> AsyncIterator[int]:
    """Echoes bytes; with `greeting`, speaks first (like SMTP or MySQL)."""
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            if greeting:
                writer.write(greeting)
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            handlers.discard(task)
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def _exchange(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    async with asyncio.timeout(10):
        got = await reader.readexactly(len(payload))
    writer.close()
    return got


async def test_binary_protocol_passes_byte_for_byte() -> None:
    async with echo_server() as port, proxy(backend_port=port) as px:
        payload = b"\x00\x01binary" + os.urandom(1_000_000)
        assert await _exchange(px.bound["outbound"].port, payload) == payload


async def test_server_speaks_first_on_an_opaque_port_is_immediate() -> None:
    async with (
        echo_server(b"220 mail ready\r\n") as port,
        proxy({"LACEWING_PROXY_OPAQUE_PORTS": f"1-3,{port}"}, port) as px,
    ):
        start = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", px.bound["outbound"].port)
        async with asyncio.timeout(2):
            assert await reader.readuntil(b"\r\n") == b"220 mail ready\r\n"
        assert time.monotonic() - start < 1.0, "opaque ports must skip detection"
        writer.write(b"HELO x\r\n")
        async with asyncio.timeout(2):
            assert await reader.readuntil(b"\r\n") == b"HELO x\r\n"
        writer.close()


async def test_detection_times_out_to_opaque() -> None:
    async with (
        echo_server(b"* OK imap\r\n") as port,
        proxy({"LACEWING_PROXY_DETECT_TIMEOUT": "300ms"}, port) as px,
    ):
        start = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", px.bound["outbound"].port)
        async with asyncio.timeout(5):
            assert await reader.readuntil(b"\r\n") == b"* OK imap\r\n"
        waited = time.monotonic() - start
        assert 0.25 < waited < 3, f"greeting after {waited:.2f}s"
        writer.close()


async def test_tls_without_a_terminator_passes_through_as_bytes() -> None:
    # (HTTP/2 prior knowledge is proxied stream by stream now: tests/unit/proxy/sockets/test_h2.py)
    async with echo_server() as port, proxy(backend_port=port) as px:
        hello = bytes.fromhex("160301002a010000260303") + os.urandom(40)
        assert await _exchange(px.bound["outbound"].port, hello) == hello
        await asyncio.sleep(0.05)
        _, _, text = await get(px.bound["admin"].port, b"GET /metrics HTTP/1.1\r\n\r\n")
        m = parse(text.decode())
        tls = {"direction": "outbound", "peer": "src", "target_addr": f"127.0.0.1:{port}",
               "tls": "no_identity", "no_tls_reason": "passthru"}  # fmt: skip
        assert m[("tcp_open_total", tls)] == 1
        assert m[("tcp_read_bytes_total", tls)] == len(hello)


async def test_connection_without_original_destination_is_refused_and_counted() -> None:
    async with proxy() as px:  # no fixed destination and no iptables redirect
        reader, writer = await asyncio.open_connection("127.0.0.1", px.bound["outbound"].port)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        async with asyncio.timeout(5):
            try:
                assert await reader.read() == b""
            except ConnectionResetError:
                pass
        writer.close()
        _, _, text = await get(px.bound["admin"].port, b"GET /metrics HTTP/1.1\r\n\r\n")
        m = parse(text.decode())
        assert m[("outbound_tcp_errors_total", {"error": "no_original_dst"})] == 1
