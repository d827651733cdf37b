"""control_* metrics: a control-plane stream over loopback is counted by the address dialled."""

from __future__ import annotations

import asyncio

import pytest
from tests.unit.proxy.promtext import parse

from lacewing.proxy.metrics import ProxyMetrics
from lacewing.proxy.transport.stream import get_lines


async def _server(head: bytes) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head + b'{"type": "HEARTBEAT"}\n')
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def test_streams_and_failed_connects_are_counted() -> None:
    metrics = ProxyMetrics()
    ok = await _server(b"HTTP/1.1 200 OK\r\n\r\n")
    bad = await _server(b"HTTP/1.1 503 Unavailable\r\n\r\n")
    async with ok, bad:
        for server in (ok, ok, bad):
            port = server.sockets[0].getsockname()[1]
            control = metrics.control.addr(f"127.0.0.1:{port}")
            async with get_lines("127.0.0.1", port, "/v1/x", ssl_context=None,
                                 server_hostname=None, timeout=5.0,
                                 control=control) as (_status, reader):  # fmt: skip
                assert await reader.readline()
        # a port nobody listens on: a request without a response head
        dead = await _server(b"")
        dead_port = dead.sockets[0].getsockname()[1]
        dead.close()
        await dead.wait_closed()
        control = metrics.control.addr(f"127.0.0.1:{dead_port}")
        with pytest.raises(OSError):
            async with get_lines("127.0.0.1", dead_port, "/", ssl_context=None,
                                 server_hostname=None, timeout=5.0, control=control):  # fmt: skip
                pass
    samples = parse("\n".join(metrics.render()))
    by_addr = dict(metrics.control.by_addr)
    assert len(by_addr) == 3, by_addr
    ok_addr = next(a for a, s in by_addr.items() if s.requests == 2)
    bad_addr = next(a for a, s in by_addr.items() if s.requests == 1 and 503 in s.responses)
    dead_addr = f"127.0.0.1:{dead_port}"
    assert samples[("control_request_total", {"addr": ok_addr})] == 2
    assert samples[("control_response_total", {"addr": ok_addr, "status_code": "200",
                                               "classification": "success"})] == 2  # fmt: skip
    assert samples[("control_response_total", {"addr": bad_addr, "status_code": "503",
                                               "classification": "failure"})] == 1  # fmt: skip
    assert samples[("control_response_total", {"addr": dead_addr, "status_code": "",
                                               "classification": "failure"})] == 1  # fmt: skip
    assert samples[("control_response_latency_ms_count", {"addr": ok_addr,
                                                          "status_code": "200"})] == 2  # fmt: skip
