"""One keep-alive connection to an endpoint: parses responses and streams them downstream.

An `UpstreamConn` is lent to one `Http1Server` at a time (`server` is set while a request is
in flight, `None` while it idles in the pool). httptools calls back as the response arrives;
the head is forwarded byte for byte when it began at the start of a read and carries no
hop-by-hop header that must go (the common case costs one `find`), otherwise rebuilt. Body
bytes are appended to the server's downstream batch, which is written once per read.

Framing towards the client: Content-Length and close-delimited bodies pass unchanged; chunked
bodies are re-chunked (httptools hands over de-chunked data), or sent raw with
`Connection: close` to an HTTP/1.0 client. Interim 1xx responses are forwarded (100 only to a
client that asked for it); 101 hands both sockets to the TCP tunnel. A response to HEAD ends at
its head, and that connection is then closed rather than reused, because httptools cannot be
told that the Content-Length it announces has no body behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, cast

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from lacewing.proxy.config import Addr
from lacewing.proxy.http1.exchange import Request
from lacewing.proxy.http1.head import (
    CONNECTION,
    CONTENT_LENGTH,
    HOP,
    KIND_CACHE,
    TRANSFER_ENCODING,
    UPGRADE,
    header_kind,
    rebuild,
)
from lacewing.proxy.metrics import TcpStats
from lacewing.proxy.transport.pool import Pool

__all__ = ["Downstream", "UpstreamConn"]

_NO_BODY_STATUS = frozenset({204, 304})
_kind_get = KIND_CACHE.get
_DETACHED = HttpResponseParser(object())  # breaks the parser <-> protocol cycle on close


class Downstream(Protocol):
    """What an upstream connection needs from the server side it answers (`Http1Server`)."""

    UPSTREAM_FULL: int
    active: Request | None
    closing: bool
    _dout: list[bytes]
    _clock: Callable[[], float]

    def pause(self, reason: int) -> None: ...

    def resume(self, reason: int) -> None: ...

    def send_down(self, data: bytes) -> None: ...

    def flush_down(self) -> None: ...

    def response_head(self, status: int, head: bytes, close_down: bool) -> None: ...

    def response_complete(self, conn: UpstreamConn) -> None: ...

    def upstream_failed(self, conn: UpstreamConn, reason: str) -> None: ...

    def upstream_upgraded(self, conn: UpstreamConn, rest: bytes) -> None: ...


class UpstreamConn(asyncio.Protocol):
    def __init__(self, endpoint: Addr, stats: TcpStats, pool: Pool[UpstreamConn]) -> None:
        self.endpoint = endpoint
        self.stats = stats
        self.pool = pool
        self.home = pool.bucket(endpoint)
        self.parser = HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.server: Downstream | None = None
        self.closed = False
        self.swept = False
        self.reusable = True
        self.paused_writing = False
        self._chunk = b""
        self._fresh = True
        self._in_message = False
        self._begin_chunk: bytes | None = None
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._conn_values: list[bytes] | None = None
        self._hop = False
        self._chunked = False
        self._has_length = False
        self._rechunk = False
        self._interim = False
        self._close_delimited = False
        self.head_sent = False

    # -- transport events ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.stats.opened += 1
        self.opened_at = self.stats.clock()

    def data_received(self, data: bytes) -> None:
        self.stats.read_bytes += len(data)
        server = self.server
        if server is None:  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        self._chunk = data
        if not self._in_message:
            self._fresh = True
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as exc:
            if self.server is not None:
                self.server.upstream_upgraded(self, data[exc.args[0] :])
            return
        except HttpParserError:
            self.reusable = False
            if self.server is not None:
                self.server.upstream_failed(self, "invalid response from endpoint")
            else:
                self.close()
            return
        if server._dout:
            server.flush_down()

    def eof_received(self) -> bool | None:
        return None

    @property
    def answering(self) -> bool:
        """A response has begun to arrive on this connection."""
        return self._in_message or self.head_sent

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.stats.close(exc, self.opened_at)
        self.parser = _DETACHED
        server = self.server
        if server is None:
            self.pool.discard(self)
            return
        if self._in_message and self._close_delimited and self.head_sent:
            self.server = None
            server.response_complete(self)
        else:
            server.upstream_failed(self, "endpoint closed the connection")

    def pause_writing(self) -> None:
        self.paused_writing = True
        if self.server is not None:
            self.server.pause(self.server.UPSTREAM_FULL)

    def resume_writing(self) -> None:
        self.paused_writing = False
        if self.server is not None:
            self.server.resume(self.server.UPSTREAM_FULL)

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def certificate_expired(self) -> None:
        """Its mutual TLS rests on an expired certificate: never reused; closed when idle."""
        self.reusable = False
        if self.server is None:
            self.close()

    # -- httptools callbacks ----------------------------------------------------------
    # No on_message_begin (one Python call less per response): the status line's reason is
    # the first callback of a message, and per-message state is reset when a message completes
    # (in on_message_complete itself: one Python call less again).
    def on_status(self, reason: bytes) -> None:
        if self._in_message:
            self._reason += reason
            return
        self._in_message = True
        self._begin_chunk = self._chunk if self._fresh else None
        self._fresh = False
        self._reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        kind = _kind_get(name)
        if kind is None:
            kind = header_kind(name)
        if kind:
            if kind == CONTENT_LENGTH:
                self._has_length = True
            elif kind == TRANSFER_ENCODING:
                self._chunked = value.rstrip().lower().endswith(b"chunked")
                self._has_length = True
            elif kind == CONNECTION:
                # `keep-alive` alone names no header to drop (Keep-Alive always goes)
                if value != b"keep-alive" and value.strip().lower() != b"keep-alive":
                    self._hop = True
                    if self._conn_values is None:
                        self._conn_values = []
                    self._conn_values.append(value)
            elif kind in (HOP, UPGRADE):
                self._hop = True

    def on_headers_complete(self) -> None:
        self._in_message = True  # also for a status line without a reason (no on_status)
        self._fresh = False
        server = self.server
        if server is None:
            return
        req = server.active
        assert req is not None
        status = self.parser.get_status_code()
        if status < 200:
            first = b"HTTP/1.1 %d %s" % (status, self._reason)
            self._interim = True
            if status == 101 and req.upgrade:
                switching = rebuild(
                    first, self._headers, self._conn_values or [], keep_upgrade=True, close=False
                )
                server.response_head(status, switching, close_down=False)
            elif status != 100 or req.expect_continue:
                server.send_down(rebuild(first, self._headers, self._conn_values or [],
                                         keep_upgrade=False, close=False))  # fmt: skip
            return
        self._interim = False
        body = not (req.is_head or status in _NO_BODY_STATUS)
        self._close_delimited = body and not self._has_length
        dechunk = self._chunked and req.http10
        close_down = (not req.keep_alive or req.upgrade or self._close_delimited or dechunk
                      or server.closing)  # fmt: skip
        self._rechunk = self._chunked and not dechunk
        head: bytes | None = None
        if not self._hop and not close_down and not req.http10:
            chunk = self._begin_chunk
            # (the status line may have begun in an earlier read that no callback saw)
            if chunk is not None and chunk is self._chunk and chunk.startswith(b"HTTP/1."):
                end = chunk.find(b"\r\n\r\n")
                if end >= 0:
                    head = chunk[: end + 4]
        if head is None:
            first = b"HTTP/1.1 %d %s" % (status, self._reason)
            head = rebuild(first, self._headers, self._conn_values or [], keep_upgrade=False,
                           close=close_down, drop_transfer_encoding=dechunk,
                           keep_alive=req.http10 and not close_down)  # fmt: skip
        self.head_sent = True
        server.response_head(status, head, close_down)
        if req.is_head:
            self.reusable = False
            self._in_message = False
            self.server = None
            server.response_complete(self)

    def on_body(self, body: bytes) -> None:
        server = self.server
        if server is None:
            return
        req = server.active
        if req is not None and req.ttfb:  # the first body byte: time to first byte
            req.first_byte(server._clock())
        if self._rechunk:
            server._dout += (b"%x\r\n" % len(body), body, b"\r\n")
        else:
            server._dout.append(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        self._begin_chunk = None
        self._reason = b""
        self._headers = []
        self._conn_values = None
        self._hop = self._chunked = self._has_length = False
        server = self.server
        if server is None or self._interim:
            return
        if self._rechunk:
            server._dout.append(b"0\r\n\r\n")
        self.reusable = self.reusable and self.parser.should_keep_alive()
        self.server = None
        server.response_complete(self)
