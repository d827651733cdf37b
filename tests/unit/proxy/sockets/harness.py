"""Start a real proxy (uvloop, loopback sockets) in front of a test backend.

`proxy(env, backend_port)` yields a started `ProxyServer` whose outbound listener forwards to
the backend through `LACEWING_PROXY_OUTBOUND_FIXED_DST`; ports are picked by the kernel.
`Client` is a raw HTTP/1 client on streams that reads exactly one response at a time, so tests
see the bytes the proxy really sends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from lacewing.proxy.config import load
from lacewing.proxy.server import ProxyServer

LOOPBACK = {
    "LACEWING_PROXY_OUTBOUND_LISTEN_ADDR": "127.0.0.1:0",
    "LACEWING_PROXY_INBOUND_LISTEN_ADDR": "127.0.0.1:0",
    "LACEWING_PROXY_ADMIN_LISTEN_ADDR": "127.0.0.1:0",
}


@contextlib.asynccontextmanager
async def proxy(env: Mapping[str, str] | None = None, backend_port: int | None = None
                ) -> AsyncIterator[ProxyServer]:  # fmt: skip
    full = dict(LOOPBACK)
    if backend_port is not None:
        full["LACEWING_PROXY_OUTBOUND_FIXED_DST"] = f"127.0.0.1:{backend_port}"
    full.update(env or {})
    server = ProxyServer(load(full))
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        async with asyncio.timeout(timeout):
            return await self._response()

    async def _response(self) -> tuple[int, dict[str, str], bytes]:
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if status < 200 or status in (204, 304):
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                body += await self.reader.readexactly(size)
                await self.reader.readuntil(b"\r\n")
            await self.reader.readuntil(b"\r\n")
            return status, headers, bytes(body)
        return status, headers, await self.reader.read()

    async def closed_by_peer(self, timeout: float = 5.0) -> bool:
        async with asyncio.timeout(timeout):
            return await self.reader.read(1) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def get(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    client = await Client.open(port)
    try:
        await client.send(raw)
        return await client.response()
    finally:
        await client.close()
