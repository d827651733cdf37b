"""Test helpers for the policy API: a raw JSON-lines stream reader, as curl would read it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from typing import Any


class PolicyStream:
    """One `GET /v1/inbound` stream; `next()` returns the next non-heartbeat line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status = 0
        self.heartbeats = 0

    @classmethod
    async def open(
        cls,
        port: int,
        query: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> PolicyStream:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ssl_context, server_hostname=server_hostname
        )
        writer.write(f"GET /v1/inbound?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        stream = cls(reader, writer)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        stream.status = int(head.split(b" ")[1])
        return stream

    async def next(self, timeout: float = 1.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                line = await self.reader.readline()
                if not line:
                    raise EOFError("stream closed")
                event = json.loads(line)
                if event.get("type") == "HEARTBEAT":
                    self.heartbeats += 1
                    continue
                return dict(event)

    async def body(self) -> dict[str, Any]:
        """The JSON body of a non-streaming answer (an error)."""
        return dict(json.loads(await asyncio.wait_for(self.reader.read(), 5)))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def summary(event: dict[str, Any]) -> tuple[str, str, list[str]]:
    """(server kind, server name, authorization names) of a POLICY line."""
    assert event["type"] == "POLICY", event
    policy = event["policy"]
    names = [a["name"] for a in policy["authorizations"]]
    return policy["server"]["kind"], policy["server"]["name"], names
