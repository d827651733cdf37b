"""Loopback test applications for the proxy's socket tests (no root, 127.0.0.1 only).

`Backend` is a small HTTP/1.1 server on asyncio streams with routes chosen by path:
  /hello           "hello" with Content-Length
  /chunked?n=K     K chunks of 1000 bytes, chunked encoding
  /bytes?n=N       N bytes, Content-Length, written in 64 KiB pieces with drain (a streaming body)
  /slow?ms=M       answers after M milliseconds
  /echo            echoes the request body (Content-Length or chunked)
  /close           answers without Content-Length and closes (close-delimited)
  /ws              WebSocket-style upgrade: 101, then echoes raw bytes
  /continue        honours Expect: 100-continue, then echoes the body
  /stall?ms=M      waits M milliseconds before reading the request body, answers its length
It counts accepted connections (`connections`) so tests can prove pool reuse. With
`one_request_per_connection`, it answers the first request of a connection keep-alive style
and closes the connection without answering when a second one arrives (the race of a server
closing an idle keep-alive connection just as the proxy reuses it).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, urlsplit


class Backend:
    def __init__(self, one_request_per_connection: bool = False) -> None:
        self.one_request_per_connection = one_request_per_connection
        self.connections = 0
        self.requests = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Backend:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            served = 0
            while await self._one(reader, writer, drop=self.one_request_per_connection and served):
                served += 1
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # ValueError: not HTTP (TLS passed through to the app, say): hang up
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int((await reader.readline()).strip(), 16)
                if size == 0:
                    await reader.readline()
                    return bytes(body)
                body += await reader.readexactly(size)
                await reader.readline()
        return b""

    async def _one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, drop: bool | int = False
    ) -> bool:
        line = await reader.readline()
        if not line or drop:
            return False
        _method, target, version = line.decode().split()
        headers: dict[str, str] = {}
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        self.requests += 1
        url = urlsplit(target)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        conn = b"" if keep else b"connection: close\r\n"
        if path == "/continue" and headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if path == "/stall":
            await asyncio.sleep(int(q.get("ms", "500")) / 1000)
        body = await self._read_body(reader, headers)
        if path == "/hello":
            payload = b"hello"
            seen = headers.get("connection", "-").encode()
            head = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-seen-connection: %s\r\n" % seen
            writer.write(head + conn + b"\r\n" + payload)
        elif path == "/stall":
            length = b"%d" % len(body)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n" % (len(length), conn))
            writer.write(length)
        elif path in ("/echo", "/continue"):
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n" % (len(body), conn) + body
            )
        elif path == "/chunked":
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n" + conn + b"\r\n")
            for _ in range(int(q.get("n", "3"))):
                writer.write(b"3e8\r\n" + b"c" * 1000 + b"\r\n")
            writer.write(b"0\r\n\r\n")
        elif path == "/bytes":
            n = int(q["n"])
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n" % (n, conn))
            piece = b"b" * 65536
            while n > 0:
                writer.write(piece[:n])
                n -= len(piece)
                await writer.drain()
        elif path == "/slow":
            await asyncio.sleep(int(q.get("ms", "100")) / 1000)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n" + conn + b"\r\nslow")
        elif path == "/close":
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil-close")
            await writer.drain()
            return False
        elif path == "/ws":
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                         b"connection: Upgrade\r\n\r\n")  # fmt: skip
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            return False
        else:
            writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n" + conn + b"\r\n")
        await writer.drain()
        return keep
