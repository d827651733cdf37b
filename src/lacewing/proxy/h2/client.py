"""One multiplexed HTTP/2 connection from the proxy to an endpoint, shared by many streams.

The `H2Pool` lends it to exchanges while it `has_capacity()` (fewer open streams than the
endpoint's MAX_CONCURRENT_STREAMS, no GOAWAY seen, not closed); `start(exchange)` opens a
stream with the exchange's request head. Events from the endpoint go to the exchange that
owns the stream (`H2Exchange.response_*`, `reset_by_endpoint`, `endpoint_lost`).

GOAWAY from the endpoint: the connection takes no new streams (the pool forgets it); with
NO_ERROR the streams it still serves finish and those past its last stream id are refused
back to their clients; with an error code, every stream is lost. When this connection's
transport cannot take more bytes, the client connections feeding it stop being read
(`H2Server.block_reading`) until it drains.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from h2 import events
from h2.errors import ErrorCodes
from h2.exceptions import NoAvailableStreamIDError, ProtocolError

from lacewing.proxy.config import Addr
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
        super().__init__(pool.flusher, limits, stats)
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
        # len(streams), not h2's open_outbound_streams, which walks every stream it has
        return len(self.streams) < self.conn.remote_settings.max_concurrent_streams

    def start(self, ex: H2Exchange) -> bool:
        """Open a stream for `ex`; False if this connection has no stream ids left."""
        conn = self.conn
        try:
            sid = conn.get_next_available_stream_id()
        except NoAvailableStreamIDError:
            self.goaway = True
            self.pool.forget(self)
            return False
        end = ex.req_ended and not ex.to_up and ex.req_trailers is None
        conn.send_headers(sid, ex.headers, end_stream=end)
        ex.up, ex.up_sid = self, sid
        ex.up_end_sent = end
        self.streams[sid] = ex
        self.swept = False
        if self.paused_writing and ex.down not in self._blocked:
            self._blocked.append(ex.down)
            ex.down.block_reading()
        self.flusher.mark(self)
        if not end:
            ex.pump_up()
        return True

    # -- events from the endpoint ----------------------------------------------------------
    def _response(self, ev: events.ResponseReceived) -> None:
        ex = self.streams.get(ev.stream_id)
        if ex is not None:
            ex.response_head(ev.headers, ev.stream_ended is not None)

    def _informational(self, ev: events.InformationalResponseReceived) -> None:
        ex = self.streams.get(ev.stream_id)
        if ex is not None:
            ex.informational(ev.headers)

    def _data(self, ev: events.DataReceived) -> None:
        ex = self.streams.get(ev.stream_id)
        if ex is None:
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            return
        ex.response_data(ev.data, ev.flow_controlled_length, ev.stream_ended is not None)

    def _trailers(self, ev: events.TrailersReceived) -> None:
        ex = self.streams.get(ev.stream_id)
        if ex is not None:
            ex.response_ended(ev.headers)

    def _ended(self, ev: events.StreamEnded) -> None:
        ex = self.streams.get(ev.stream_id)
        if ex is not None:
            ex.response_ended()

    def _reset(self, ev: events.StreamReset) -> None:
        ex = self.streams.get(ev.stream_id)
        if ex is not None:
            ex.reset_by_endpoint(ev.error_code)

    def _window(self, ev: events.WindowUpdated) -> None:
        if ev.stream_id == 0:
            self.writable()
        else:
            ex = self.streams.get(ev.stream_id)
            if ex is not None:
                ex.pump_up()

    def _settings(self, ev: events.RemoteSettingsChanged) -> None:
        self.writable()

    def _goaway(self, ev: events.ConnectionTerminated) -> None:
        self.goaway = True
        self.pool.forget(self)
        if ev.error_code != ErrorCodes.NO_ERROR:
            if self.transport is not None:
                self.transport.close()  # connection_lost fails its streams
            return
        last = ev.last_stream_id if ev.last_stream_id is not None else 0
        for sid, ex in list(self.streams.items()):
            if sid > last:
                ex.refused_by_endpoint()
        if self.streams:
            self.keep_open()
        elif self.transport is not None:
            self.transport.close()

    def protocol_error(self, exc: ProtocolError) -> None:
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
        self.stats.closed += 1
        self.pool.forget(self)
        self._unblock()
        for ex in list(self.streams.values()):
            ex.endpoint_lost("endpoint closed the connection")
        self.streams.clear()
        self.flusher.flush()


H2Upstream.HANDLERS = {
    events.ResponseReceived: H2Upstream._response,
    events.InformationalResponseReceived: H2Upstream._informational,
    events.DataReceived: H2Upstream._data,
    events.TrailersReceived: H2Upstream._trailers,
    events.StreamEnded: H2Upstream._ended,
    events.StreamReset: H2Upstream._reset,
    events.WindowUpdated: H2Upstream._window,
    events.RemoteSettingsChanged: H2Upstream._settings,
    events.ConnectionTerminated: H2Upstream._goaway,
}
