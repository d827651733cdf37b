"""The shared controller server: named tracked connections, staged stop, head reading, responses."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import pytest

from lacewing.controller.https import ControllerServer, RequestHead, json_response, read_head
from lacewing.errors import CertificateError, UsageError


class Echo(ControllerServer):
    """Answers after `delay` seconds with the task's own name."""

    label = "echo"
    task_prefix = "echo-conn"

    def __init__(self, delay: float, tls: Callable[[], ssl.SSLContext] | None = None) -> None:
        super().__init__("127.0.0.1", 0, tls)
        self.delay = delay
        self.finished = 0

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(self.delay)
        task = asyncio.current_task()
        assert task is not None
        writer.write(json_response(200, {"task": task.get_name()}))
        await writer.drain()
        self.finished += 1


async def ask(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


async def test_connections_are_named_tasks_and_answered() -> None:
    server = Echo(delay=0)
    await server.start()
    try:
        assert server.bound_port > 0
        first, second = await ask(server.bound_port), await ask(server.bound_port)
    finally:
        await server.stop()
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert first.endswith(b'{"task": "echo-conn-1"}\n')
    assert second.endswith(b'{"task": "echo-conn-2"}\n')


async def test_stop_lets_in_flight_work_finish_within_the_grace() -> None:
    server = Echo(delay=0.1)
    await server.start()
    client = asyncio.create_task(ask(server.bound_port), name="client")
    await asyncio.sleep(0.05)
    await server.stop(grace=2.0)
    assert (await client).endswith(b'{"task": "echo-conn-1"}\n')
    assert server.finished == 1


async def test_stop_cancels_what_outlives_the_grace() -> None:
    server = Echo(delay=30)
    await server.start()
    client = asyncio.create_task(ask(server.bound_port), name="client")
    await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        await server.stop(grace=0.05)
    assert await client == b""  # closed without an answer
    assert server.finished == 0


async def test_a_port_in_use_is_one_usage_line() -> None:
    taken = Echo(delay=0)
    await taken.start()
    try:
        again = Echo(delay=0)
        again.port = taken.bound_port
        with pytest.raises(UsageError, match=r"cannot listen on 127\.0\.0\.1:\d+") as err:
            await again.start()
        assert err.value.hint == "pick another --listen-addr"
    finally:
        await taken.stop()


def test_json_response_is_one_closing_json_line() -> None:
    assert json_response(431, {"error": "too big"}) == (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\n"
        b'Content-Length: 21\r\nConnection: close\r\n\r\n{"error": "too big"}\n'
    )


async def feed(raw: bytes) -> RequestHead | tuple[int, dict[str, object]]:
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    return await read_head(reader, max_head=64)


async def test_read_head_parses_and_refuses() -> None:
    head = await feed(b"POST /v1/certify?x=1 HTTP/1.1\r\nContent-Length: 3\r\nX-A:b\r\n\r\n")
    assert head == RequestHead("POST", "/v1/certify", {"content-length": "3", "x-a": "b"}, "x=1")
    assert await feed(b"GARBAGE\r\n\r\n") == (400, {"error": "malformed request line"})
    too_long = b"GET / HTTP/1.1\r\nX: " + b"a" * 80 + b"\r\n\r\n"
    assert await feed(too_long) == (431, {"error": "request head too large"})


async def test_an_unusable_certificate_fails_start_not_each_handshake() -> None:
    def no_certificate() -> ssl.SSLContext:
        raise CertificateError("cannot read the certificate", hint="mount it")

    server = Echo(delay=0, tls=no_certificate)
    with pytest.raises(CertificateError, match="cannot read the certificate"):
        await server.start()
    assert server.bound_port == 0
