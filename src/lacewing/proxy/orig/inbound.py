"""Inbound: an HTTP/2 stream marked `l5d-orig-proto` goes to the app as the HTTP/1 request
it was, over the inbound side's pooled plaintext HTTP/1 connections, and the app's HTTP/1
response goes back as the stream's HTTP/2 response.

    H2Server --stream (HEADERS, DATA)--> H1Stream --HTTP/1 bytes--> Http1Server --> app
    H2Server <--HEADERS, DATA, END_STREAM-- H1Stream <--HTTP/1 bytes (write)-- Http1Server

`stream_bridge(server, sid, headers, ended)` is the hook `H2Server.on_request` asks first
(`side.orig_bridge`): for a stream whose head carries `l5d-orig-proto` it takes the stream
and returns True; any other stream stays HTTP/2 to the app, as before.

An `H1Stream` is the stream's exchange as `H2Server` sees one, and the transport of an
`Http1Server` made for it: the request head is rebuilt by `origproto.request_head` (its
version, Host from `:authority`, the header removed) and fed to the `Http1Server` with the
body (DATA, chunked when it has no Content-Length), so the inbound HTTP/1 layer does what it
does for any request: authorization policy (the client's identity is the mutual-TLS
connection's: the derived side's, its peer address the connection's), routes, metrics, tap,
pooled connections to the app. What the `Http1Server` writes back is parsed (httptools) and
sent down: HEADERS (`origproto.response_fields`, hop-by-hop headers gone), DATA within the
stream's window (what does not fit waits; past `_HIGH_WATER` bytes the `Http1Server` is told
`pause_writing`, which stops reading from the app), END_STREAM when the message ends.
Request DATA is acknowledged to the client once handed on; while the `Http1Server` has
paused reading (`pause_reading`), it is held, unacknowledged, so the client's window closes.
The client resetting the stream, or its connection going, is the `Http1Server`'s client
going away (`connection_lost`: the exchange is abandoned once); the `Http1Server` closing
before the response ended resets the stream (INTERNAL_ERROR).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from httptools import HttpParserError, HttpResponseParser

from lacewing.proxy.h2.frames import ErrorCodes
from lacewing.proxy.h2.headers import error_headers
from lacewing.proxy.http1.server import Http1Server
from lacewing.proxy.metrics import TcpStats
from lacewing.proxy.origproto import (
    LAST_CHUNK,
    Untranslatable,
    chunk,
    orig_version,
    request_head,
    response_fields,
)

if TYPE_CHECKING:
    from lacewing.proxy.h2.codec import Headers
    from lacewing.proxy.h2.server import H2Server

__all__ = ["H1Stream", "stream_bridge"]

_HIGH_WATER = 256 * 1024


def stream_bridge(server: H2Server, sid: int, headers: Headers, ended: bool) -> bool:
    """Take the stream if it carries an HTTP/1 request (`l5d-orig-proto`); else False."""
    try:
        version = orig_version(headers)
        if version is None:
            return False
        head, chunked = request_head(headers, version, ended=ended)
    except Untranslatable as exc:
        server.conn.send_headers(sid, error_headers(False, exc.status, exc.reason),
                                 end_stream=True)  # fmt: skip
        server.flusher.mark(server)
        return True
    method = next((v for k, v in headers if k == b":method"), b"")
    stream = H1Stream(server, sid, chunked, ended, method == b"HEAD")
    server.streams[sid] = stream  # type: ignore[assignment]
    stream.start(head)
    return True


class H1Stream(asyncio.Transport):
    ended = False  # the response head went down (`H2Server.on_reset` asks)

    def __init__(self, down: H2Server, sid: int, chunked: bool, req_ended: bool,
                 is_head: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.down, self.sid = down, sid
        self.chunked = chunked
        self.req_ended = req_ended
        self.touched = True
        self.quiet_since = down.side.clock()
        self.closed = False
        self.reading = True
        self.finished = False
        self._held: list[tuple[bytes, int]] = []
        self._to_down: deque[bytes] = deque()
        self._queued = 0
        self._full = False
        self._end_down = False  # the response is complete: END_STREAM after the queue
        self._end_sent = False
        self._close_delimited = False  # the app's response ends when its connection does
        self.is_head = is_head
        self._fields: list[tuple[bytes, bytes]] = []
        self._head: list[tuple[bytes, bytes]] | None = None
        self.parser = HttpResponseParser(self)
        self.server = Http1Server(down.side, down.dst, TcpStats(down.side.clock))

    def start(self, head: bytes) -> None:
        self.server.adopt(self, head)
        if self.req_ended and self.chunked:  # (request_head never chunks an ended stream)
            self.server.data_received(LAST_CHUNK)

    # -- from the client (H2Server) ----------------------------------------------------------
    def request_data(self, data: bytes, flow: int, ended: bool) -> None:
        self.touched = True
        if self.reading and not self._held:
            self._hand_on(data, flow, ended)
        else:
            self._held.append((data, flow))
            if ended:
                self.req_ended = True

    def _hand_on(self, data: bytes, flow: int, ended: bool) -> None:
        down = self.down
        if flow and not down.closed:
            down.conn.acknowledge_received_data(flow, self.sid)
            down.flusher.mark(down)
        out = (chunk(data) if data else b"") if self.chunked else data
        if ended and self.chunked:
            out += LAST_CHUNK
        if out and not self.closed:
            self.server.data_received(out)

    def request_ended(self, trailers: Headers | None = None) -> None:
        if self.req_ended and not self._held:
            return
        if self._held:
            self.req_ended = True
            return
        self.req_ended = True
        self._hand_on(b"", 0, True)

    def reset_by_client(self, code: int) -> None:
        self._finish(reset=None)

    def timed_out(self) -> None:
        self._finish(reset=ErrorCodes.CANCEL)

    def pump_down(self) -> None:
        down = self.down
        if down.closed or self.finished:
            return
        conn = down.conn
        queue = self._to_down
        window = conn.send_window(self.sid)
        frame = conn.max_outbound_frame_size
        while queue and window > 0:
            data = queue[0]
            n = min(len(data), window, frame)
            if n < len(data):
                conn.send_data(self.sid, data[:n])
                queue[0] = data[n:]
            else:
                queue.popleft()
                last = self._end_down and not queue
                conn.send_data(self.sid, data, end_stream=last)
                self._end_sent = last
            window -= n
            self._queued -= n
            self.touched = True
        if not queue and self._end_down:
            if not self._end_sent:
                conn.end_stream(self.sid)
            self._done()
        down.flusher.mark(down)
        if self._full and self._queued < _HIGH_WATER // 2:
            self._full = False
            self.server.resume_writing()

    # -- asyncio.Transport, as the Http1Server uses it -----------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            return
        try:
            self.parser.feed_data(bytes(data))
        except HttpParserError:
            self._finish(reset=ErrorCodes.INTERNAL_ERROR)
            return
        self._send_head()
        self.pump_down()
        if not self._full and self._queued > _HIGH_WATER:
            self._full = True
            self.server.pause_writing()
        self.down.pool.flush_soon()  # (the responses of one poll: one write)

    def _send_head(self) -> None:
        head, self._head = self._head, None
        if head is None or self.down.closed:
            return
        end = self._end_down and not self._to_down
        self.down.conn.send_headers(self.sid, head, end_stream=end)
        self.down.flusher.mark(self.down)
        if end:
            self._done()

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self._lose()

    def abort(self) -> None:
        self._lose()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
        held, self._held = self._held, []
        for i, (data, flow) in enumerate(held):
            self._hand_on(data, flow, self.req_ended and i == len(held) - 1)
        self.down.flusher.flush()

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return self._queued

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        transport = self.down.transport
        return transport.get_extra_info(name, default) if transport is not None else default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        pass  # (always its Http1Server)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.server

    # -- httptools callbacks: the app's response, as the Http1Server writes it ----------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        fields, self._fields = self._fields, []
        if status < 200:
            if not self.down.closed and status != 101:
                self.down.conn.send_headers(self.sid, [(b":status", b"%d" % status)])
                self.down.flusher.mark(self.down)
            return
        self.ended = True
        self._head = response_fields(status, fields)
        framed = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in fields)
        if self.is_head or status in (204, 304):
            self._end_down = True  # (the parser does not know the request was a HEAD)
        elif not framed:
            self._close_delimited = True

    def on_body(self, body: bytes) -> None:
        if self._head is not None:
            self._send_head()
        self._to_down.append(body)
        self._queued += len(body)

    def on_message_complete(self) -> None:
        if not self.ended:  # (an informational response)
            return
        self._end_down = True

    # -- endings -----------------------------------------------------------------------------
    def _done(self) -> None:
        """END_STREAM went down: the exchange is over; its Http1Server goes."""
        if self.finished:
            return
        self._end_down = False
        self._finish(reset=None if self.req_ended else ErrorCodes.NO_ERROR)

    def _lose(self) -> None:
        """The Http1Server closed its 'connection': the stream ends with it if it had not."""
        if self.closed:
            return
        self.closed = True
        if self._close_delimited and not self.finished:
            self._end_down = True  # its end is the connection's
        if not self.finished and self._end_down:
            self._send_head()
            self.pump_down()
        if not self.finished:
            self._finish(reset=ErrorCodes.INTERNAL_ERROR, lose=False)
        self.down.pool.flush_soon()  # (called from the app's side: no HTTP/2 event flushes)
        asyncio.get_running_loop().call_soon(self.server.connection_lost, None)

    def _finish(self, *, reset: int | None, lose: bool = True) -> None:
        if self.finished:
            return
        self.finished = True
        down = self.down
        if reset is not None and not down.closed:
            down.conn.reset_stream(self.sid, reset)
            down.flusher.mark(down)
        flow = sum(f for _, f in self._held)
        self._held = []
        if flow and not down.closed:
            down.conn.acknowledge_received_data(flow, self.sid)
            down.flusher.mark(down)
        self._to_down.clear()
        down.streams.pop(self.sid, None)
        if lose and not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.server.connection_lost, None)
        if not down.streams:
            down.stream_finished()
