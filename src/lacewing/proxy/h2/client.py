"""One multiplexed HTTP/2 connection from the proxy to an endpoint, shared by many streams.

The `H2Pool` lends it to exchanges while it `has_capacity()` (fewer open streams than the
endpoint's MAX_CONCURRENT_STREAMS, no GOAWAY seen, not closed); `start(exchange)` opens a
stream with the exchange's request head. Events from the endpoint go to the exchange that
owns the stream (`H2Exchange.response_*`, `reset_by_endpoint`, `endpoint_lost`).

When a certificate of its mutual TLS expires, the connection drains the same way from our
side (`certificate_expired`): a GOAWAY, no new streams, closed after the last one ends.

GOAWAY from the endpoint: the connection takes no new streams (the pool forgets it); with
NO_ERROR the streams it still serves finish and those past its last stream id are refused
back to their clients; with an error code, every stream is lost. When this connection's
transport cannot take more bytes, the client connections feeding it stop being read
(`H2Server.block_reading`) until it drains.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lacewing.proxy.config import Addr
from lacewing.proxy.h2.codec import Headers
from lacewing.proxy.h2.frames import ErrorCodes, H2Error
from lacewing.proxy.h2.peer import H2Peer
from lacewing.proxy.h2.settings import H2Limits
from lacewing.proxy.metrics import TcpStats

if TYPE_CHECKING:
    from lacewing.proxy.h2.pool import H2Pool
    from lacewing.proxy.h2.server import H2Server
    from lacewing.proxy.h2.stream import H2Exchange

__all__ = ["H2Upstream"]


class H2Upstream(H2Peer):
    client_side = True

    def __init__(self, pool: H2Pool, addr: Addr, stats: TcpStats, limits: H2Limits) -> None:
        super().__init__(pool.flusher, limits, stats, pool.side.clock)
        self.clock = pool.side.clock
        self.pool = pool
        self.addr = addr
        self.goaway = False
        self.swept = False
        self._blocked: list[H2Server] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.set_transport(transport)
        self.stats.opened += 1
        self.flusher.mark(self)  # the preface and our SETTINGS

    def has_capacity(self) -> bool:
        if self.goaway or self.closed:
            return False
        return len(self.streams) < self.conn.remote_max_concurrent_streams

    def start(self, ex: H2Exchange) -> bool:
        """Open a stream for `ex`; False if this connection has no stream ids left."""
        conn = self.conn
        try:
            sid = conn.get_next_available_stream_id()
        except H2Error:
            self.goaway = True
            self.pool.forget(self)
            return False
        end = ex.req_ended and not ex.to_up and ex.req_trailers is None
        conn.send_headers(sid, ex.headers, end)
        ex.sent_at = self.clock()
        ex.up, ex.up_sid = self, sid
        if end:
            ex.up_end_sent = True
        self.streams[sid] = ex
        self.swept = False
        if self.paused_writing and ex.down not in self._blocked:
            self._blocked.append(ex.down)
            ex.down.block_reading()
        if not self.dirty:
            self.flusher.mark(self)
        if not end:
            ex.pump_up()
        return True

    # -- events from the endpoint ----------------------------------------------------------
    def on_response(self, sid: int, headers: Headers, ended: bool) -> None:
        ex = self.streams.get(sid)
        if ex is not None:
            ex.response_head(headers, ended)

    def on_informational(self, sid: int, headers: Headers) -> None:
        ex = self.streams.get(sid)
        if ex is not None:
            ex.informational(headers)

    def on_data(self, sid: int, data: bytes, flow: int, ended: bool) -> None:
        ex = self.streams.get(sid)
        if ex is None:
            self.conn.acknowledge_received_data(flow, sid)
            return
        ex.response_data(data, flow, ended)

    def on_trailers(self, sid: int, headers: Headers) -> None:
        ex = self.streams.get(sid)
        if ex is not None:
            ex.response_ended(headers)

    def on_reset(self, sid: int, code: int) -> None:
        ex = self.streams.get(sid)
        if ex is not None:
            ex.reset_by_endpoint(code)

    def on_window(self, sid: int) -> None:
        if sid == 0:
            self.writable()
        else:
            ex = self.streams.get(sid)
            if ex is not None:
                ex.pump_up()

    def on_goaway(self, code: int, last_sid: int) -> None:
        self.goaway = True
        self.pool.forget(self)
        if code != ErrorCodes.NO_ERROR:
            if self.transport is not None:
                self.transport.close()  # connection_lost fails its streams
            return
        for sid, ex in list(self.streams.items()):
            if sid > last_sid:
                ex.refused_by_endpoint()
        if not self.streams and self.transport is not None:
            self.transport.close()

    def protocol_error(self, exc: H2Error) -> None:
        self.goaway = True
        self.pool.forget(self)
        super().protocol_error(exc)

    # -- flow control ----------------------------------------------------------------------
    def writable(self) -> None:
        for ex in list(self.streams.values()):
            ex.pump_up()

    def pause_writing(self) -> None:
        super().pause_writing()
        for ex in self.streams.values():
            down = ex.down
            if down not in self._blocked:
                self._blocked.append(down)
                down.block_reading()

    def resume_writing(self) -> None:
        self._unblock()
        super().resume_writing()

    def _unblock(self) -> None:
        blocked, self._blocked = self._blocked, []
        for down in blocked:
            down.unblock_reading()

    # -- endings ---------------------------------------------------------------------------
    def stream_finished(self) -> None:
        if not self.streams and self.goaway and self.transport is not None and not self.closed:
            self.write_out()
            self.transport.close()

    def certificate_expired(self) -> None:
        """Its mutual TLS rests on an expired certificate (`mtls.ExpiryWatch`): it takes no
        new streams, tells the endpoint with a GOAWAY (NO_ERROR), and closes when the streams
        in flight have finished (`stream_finished`), as an HTTP/1 connection finishes its
        request first."""
        if not self.streams:
            self.close()
            return
        self.goaway = True
        self.pool.forget(self)
        if self.transport is not None and not self.closed:
            self.conn.close_connection(ErrorCodes.NO_ERROR, 0)  # (we accept no pushed streams)
            self.write_out()

    def close(self) -> None:
        """Close now (idle, or shutdown): a GOAWAY, then the socket."""
        self.goaway = True
        self.pool.forget(self)
        if self.transport is not None and not self.closed:
            self.conn.close_connection()
            self.write_out()
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.goaway = True
        self.stats.close(exc, self.opened_at)
        self.pool.forget(self)
        self._unblock()
        for ex in list(self.streams.values()):
            ex.endpoint_lost("endpoint closed the connection")
        self.streams.clear()
        self.flusher.flush()
