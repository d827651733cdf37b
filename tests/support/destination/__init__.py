"""Test helpers for the destination API: a raw JSON-lines stream reader, as curl would read it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import quote


class Stream:
    """One `GET /v1/endpoints` stream; `next()` returns the next non-heartbeat event."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status = 0
        self.endpoints: dict[str, dict[str, Any]] = {}  # "ip:port" -> endpoint, as applied

    @classmethod
    async def open(cls, port: int, authority: str, namespace: str | None = None) -> Stream:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        query = "authority=" + quote(authority, safe="")
        if namespace:
            query += f"&namespace={namespace}"
        writer.write(f"GET /v1/endpoints?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        stream = cls(reader, writer)
        stream.endpoints = {}
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
                if event.get("type") != "HEARTBEAT":
                    self._apply(event)
                    return dict(event)

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "NO_ENDPOINTS":
            self.endpoints.clear()
        for e in event.get("endpoints", []):
            key = f"{e['address']}:{e['port']}"
            if kind == "ADDED":
                self.endpoints[key] = e
            elif kind == "REMOVED":
                self.endpoints.pop(key, None)

    async def until(self, addresses: list[str], timeout: float = 1.0) -> list[dict[str, Any]]:
        """Read events until the applied set is exactly `addresses`; the events read."""
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while sorted(self.endpoints) != sorted(addresses):
                seen.append(await self.next(timeout))
        return seen

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def addresses(event: dict[str, Any]) -> list[str]:
    return sorted(f"{e['address']}:{e['port']}" for e in event.get("endpoints", []))
