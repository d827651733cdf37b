"""Outbound: an app's HTTP/1 requests to a meshed endpoint travel as HTTP/2 streams on the
side's multiplexed mutual-TLS connection to it (`h2.pool`), marked `l5d-orig-proto`.

    Http1Server --HTTP/1 bytes--> UpstreamConn --write--> StreamTransport --HEADERS/DATA-->
                                                           H2Upstream (one mTLS connection)
    Http1Server <--HTTP/1 bytes-- UpstreamConn <--data_received-- StreamTransport <--

`OrigProtoConnector` wraps the side's connector. For an HTTP/1 upstream connection
(`http1.upstream.UpstreamConn`) to an endpoint the connector originates mutual TLS to (it has
an identity), it connects nothing: it waits until the H2 pool has a connection there with room
(`H2Pool.ready`: a failure is the same `ConnectError`, so 502 / 504 as on HTTP/1) and gives
the `UpstreamConn` a `StreamTransport`, a transport made of HTTP/2 streams. Everything else
(HTTP/2's own connections, endpoints without identity) goes to the wrapped connector as is.

The HTTP/1 layer keeps doing what it does (routes, retries, timeouts, policy, metrics, tap,
pooling: the `UpstreamConn` and its virtual transport go back to the idle pool after each
response), so a translated request is treated exactly as an HTTP/1 one; only its bytes go
another way. A `StreamTransport` carries one request at a time, each on a new stream: the
request bytes written to it are parsed (httptools), the head mapped by `origproto`, the body
sent as DATA; the response head is mapped back and fed to the `UpstreamConn` with its body
framed by Content-Length, else chunked. A stream reset, GOAWAY or lost connection before the
response ends looks to the `UpstreamConn` like its connection closing (`connection_lost`):
502 before the head, a cut response after it, as on HTTP/1. Closing the transport resets the
stream in flight (CANCEL). When the client reads slowly (`pause_reading`), response DATA is
held and not acknowledged, so the endpoint's window closes; when the H2 connection cannot
write, the `UpstreamConn` is told `pause_writing`, which stops reading from the client.
Upgrades and CONNECT are not translated: `Http1Server` opens a connection of its own for
one (`UpstreamConn.raw`), which this connector hands to the wrapped one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from httptools import HttpParserError, HttpRequestParser

from lacewing.proxy.config import Addr
from lacewing.proxy.http1.upstream import UpstreamConn
from lacewing.proxy.metrics import TcpStats
from lacewing.proxy.origproto import (
    LAST_CHUNK,
    Framing,
    Untranslatable,
    chunk,
    request_fields,
    response_head,
)
from lacewing.proxy.side import Side
from lacewing.proxy.transport import Connector

if TYPE_CHECKING:
    from lacewing.proxy.h2.codec import Headers
    from lacewing.proxy.h2.pool import H2Pool

__all__ = ["OrigProtoConnector", "StreamTransport"]

P = TypeVar("P", bound=asyncio.BaseProtocol)
_CANCEL = 0x8  # RST_STREAM CANCEL (RFC 9113 7; `h2.frames.ErrorCodes`, which loads HTTP/2)


class OrigProtoConnector:
    def __init__(self, inner: Connector, side: Side) -> None:
        self.inner = inner
        self.side = side

    def labels_for(self, addr: Addr) -> tuple[tuple[str, str], ...] | None:
        return self.inner.labels_for(addr)

    def __getattr__(self, name: str) -> Any:  # the wrapped connector's other settings
        return getattr(self.inner, name)

    async def connect(self, addr: Addr, factory: Callable[[], P]) -> tuple[asyncio.Transport, P]:
        protocol = factory()
        if (not isinstance(protocol, UpstreamConn) or protocol.raw
                or self.inner.labels_for(addr) is None):  # fmt: skip
            return await self.inner.connect(addr, lambda: protocol)
        from lacewing.proxy.h2.pool import pool_of  # (HTTP/2 loads on first use)

        pool = pool_of(self.side)
        await pool.ready(addr)
        # the real connection is counted by the H2 pool; this one is no TCP connection
        protocol.stats = TcpStats(self.side.clock)
        transport = StreamTransport(pool, addr, protocol)
        protocol.connection_made(transport)
        return transport, cast(P, protocol)


class StreamTransport(asyncio.Transport):
    """An `UpstreamConn`'s transport: each request it is written becomes an HTTP/2 stream.
    It is also the stream's exchange as `H2Upstream` and `H2Pool` see one."""

    def __init__(self, pool: H2Pool, addr: Addr, protocol: UpstreamConn) -> None:
        super().__init__()
        self.pool, self.addr, self.protocol = pool, addr, protocol
        self.parser = HttpRequestParser(self)
        self.closed = False
        self.reading = True
        self.down = self  # (`H2Upstream` blocks and unblocks reading through `ex.down`)
        self._held: list[tuple[bytes, int]] = []
        self._reset_stream()

    def _reset_stream(self) -> None:
        self.up: Any = None
        self.up_sid = 0
        self.up_end_sent = False
        self.req_ended = False
        self.req_trailers: Headers | None = None
        self.to_up: deque[list[object]] = deque()
        self.headers: list[tuple[bytes, bytes]] = []
        self.sent_at = 0.0
        self.finished = False
        self.opened = False
        self.answered = False  # the response head went to the UpstreamConn
        self.end_pending = False  # the response ended while its body was held back
        self.framing = Framing.NONE
        self._url = b""
        self._fields: list[tuple[bytes, bytes]] = []
        self._is_head = False

    # -- asyncio.Transport, as UpstreamConn uses it -----------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            return
        try:
            self.parser.feed_data(bytes(data))
        except (HttpParserError, Untranslatable):
            self._lose(ConnectionResetError("request not translatable to HTTP/2"))
            return
        if self.headers and not self.opened:
            self.opened = True
            self.pool.open(self, self.addr)  # type: ignore[arg-type]
            self.pool.flush_soon()  # (the requests of one poll: one write)
        elif self.up is not None:
            self.pump_up()
            self.pool.flush_soon()

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self._lose(None)

    def abort(self) -> None:
        self._lose(None)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
        held, self._held = self._held, []
        for data, flow in held:
            self._deliver(data, flow)
        if self.end_pending:
            self._response_done()
        self.pool.flusher.flush()

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        up = self.up
        if up is not None and up.transport is not None:
            return up.transport.get_extra_info(name, default)
        return default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = cast(UpstreamConn, protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol

    # -- httptools callbacks: the request the UpstreamConn writes ---------------------------
    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        method = parser.get_method()
        self._is_head = method == b"HEAD"
        dst = b"%s:%d" % (self.addr.host.encode(), self.addr.port)
        self.headers = request_fields(method, self._url, parser.get_http_version(),
                                      self._fields, default_authority=dst)  # fmt: skip

    def on_body(self, body: bytes) -> None:
        self.to_up.append([body, 0])

    def on_message_complete(self) -> None:
        self.req_ended = True

    # -- the stream, as H2Upstream drives it --------------------------------------------------
    def pump_up(self) -> None:
        up = self.up
        if up is None or self.up_end_sent or up.closed:
            return
        ended = False
        if self.to_up and not up.paused_writing:
            ended = _send(self.to_up, up, self.up_sid, self.req_ended)
        if not self.to_up and self.req_ended:
            self.up_end_sent = True
            if not ended:
                up.conn.end_stream(self.up_sid)
            up.flusher.mark(up)

    def block_reading(self) -> None:
        self.protocol.pause_writing()

    def unblock_reading(self) -> None:
        self.protocol.resume_writing()

    def informational(self, headers: Headers) -> None:
        head = response_head(headers, http10=False, keep_alive=True, is_head=False, ended=True)
        self.protocol.data_received(head.head)

    def response_head(self, headers: Headers, ended: bool) -> None:
        try:
            head = response_head(headers, http10=False, keep_alive=True,
                                 is_head=self._is_head, ended=ended)  # fmt: skip
        except Untranslatable:
            self._stream_failed()
            return
        self.answered = True
        self.framing = head.framing
        self.protocol.data_received(head.head)
        if ended:
            self._response_done()

    def response_data(self, data: bytes, flow: int, ended: bool) -> None:
        if self.reading and not self._held:
            self._deliver(data, flow)
        else:
            self._held.append((data, flow))
        if ended:
            self.response_ended()

    def _deliver(self, data: bytes, flow: int) -> None:
        up = self.up
        if flow and up is not None and not up.closed:
            up.conn.acknowledge_received_data(flow, self.up_sid)
            up.flusher.mark(up)
        if data and self.framing is not Framing.NONE:
            self.protocol.data_received(chunk(data) if self.framing is Framing.CHUNKED else data)

    def response_ended(self, trailers: Headers | None = None) -> None:
        if self._held:  # the end waits for the body held back (`resume_reading`)
            self.end_pending = True
        else:
            self._response_done()

    def _response_done(self) -> None:
        framing = self.framing
        self._end_stream(reset=not self.up_end_sent)
        if framing is Framing.CHUNKED:
            self.protocol.data_received(LAST_CHUNK)

    def reset_by_endpoint(self, code: int) -> None:
        self._stream_failed()

    def endpoint_lost(self, reason: str) -> None:
        self.up = None  # (its connection is gone: nothing to reset there)
        self._stream_failed()

    def refused_by_endpoint(self) -> None:
        up = self.up
        if up is not None:
            up.conn.forget_stream(self.up_sid)
        self._stream_failed()

    def fail(self, reason: str) -> None:
        self._stream_failed()

    # -- endings -----------------------------------------------------------------------------
    def _stream_failed(self) -> None:
        """The stream ended before its response did: to the UpstreamConn, its connection
        closed (502 before the head, a cut response after it)."""
        self._end_stream(reset=False)
        self._lose(ConnectionResetError("stream reset by the endpoint"))

    def _end_stream(self, *, reset: bool) -> None:
        up, sid = self.up, self.up_sid
        held = self._held
        self._reset_stream()
        self._held = []
        if up is None:
            return
        if reset and not up.closed:
            up.conn.reset_stream(sid, _CANCEL)
            up.flusher.mark(up)
        flow = sum(f for _, f in held)
        if flow and not up.closed:
            up.conn.acknowledge_received_data(flow, sid)
            up.flusher.mark(up)
        up.streams.pop(sid, None)
        if not up.streams:
            up.stream_finished()

    def _lose(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        if self.up is not None:
            self._end_stream(reset=True)
        self.finished = True  # (a stream still waiting for its connection is not opened)
        self.pool.flusher.flush()
        asyncio.get_running_loop().call_soon(self.protocol.connection_lost, exc)


def _send(queue: deque[list[object]], up: Any, sid: int, end: bool) -> bool:
    """Send queued request DATA while the stream's window allows; True if END_STREAM went."""
    conn = up.conn
    window = conn.send_window(sid)
    frame = conn.max_outbound_frame_size
    ended = False
    while queue and window > 0:
        data = cast(bytes, queue[0][0])
        n = min(len(data), window, frame)
        if n < len(data):
            conn.send_data(sid, data[:n])
            queue[0][0] = data[n:]
            window -= n
            continue
        queue.popleft()
        last = end and not queue
        conn.send_data(sid, data, end_stream=last)
        ended = last
        window -= n
    up.flusher.mark(up)
    return ended
