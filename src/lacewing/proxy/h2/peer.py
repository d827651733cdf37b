"""What both ends of an HTTP/2 hop share: an `H2Codec` (sans-I/O) driven by a thin Protocol.

`H2Peer` owns one `codec.H2Codec` and one transport, and is the codec's handler: the codec
calls `on_request`, `on_data`, ... on it as frames are parsed, and the subclasses (the
accepted side, `server.H2Server`, and the upstream side, `client.H2Upstream`) pass them to
the exchange of the stream. What the codec has to send is written once per batch, not once
per frame: anything that changes a connection marks it in the side's `Flusher`, and every
entry point ends with a flush: a read with `flusher.flush_soon()`, which writes once the
other callbacks of this event-loop iteration have run (so reads of many client connections
ready in one poll cost the upstream connection they share one `transport.write`), a connect,
a timer or a resume with `flusher.flush()`, at once.

A connection error makes the codec raise `H2Error` after queueing a GOAWAY with the error's
code: the peer writes it and closes; its streams end as `connection_lost` says. An overlong
frame is refused as soon as its 9-byte header is in, never buffered.

GOAWAY with NO_ERROR is graceful (RFC 9113 6.8): streams up to its last stream id go on, in
both directions (`write_graceful_goaway`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, cast

from lacewing.proxy.h2.codec import H2Codec, Headers
from lacewing.proxy.h2.frames import ErrorCodes, H2Error
from lacewing.proxy.h2.settings import H2Limits
from lacewing.proxy.metrics import TcpStats

if TYPE_CHECKING:
    from lacewing.proxy.h2.stream import H2Exchange

__all__ = ["ErrorCodes", "Flusher", "H2Peer"]


class Flusher:
    """Connections with bytes to write, written out together at the end of a batch.

    `flush()` writes now; `flush_soon()` (what reads call) writes once every callback of this
    event-loop iteration has run: the reads of several client connections that feed one
    upstream connection, ready in the same poll, then cost it one write, not one each."""

    __slots__ = ("_soon", "dirty")

    def __init__(self) -> None:
        self.dirty: list[H2Peer] = []
        self._soon = False

    def mark(self, peer: H2Peer) -> None:
        if not peer.dirty:
            peer.dirty = True
            self.dirty.append(peer)

    def flush_soon(self) -> None:
        if self.dirty and not self._soon:
            self._soon = True
            asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._soon = False
        self.flush()

    def flush(self) -> None:
        while self.dirty:
            batch, self.dirty = self.dirty, []
            for peer in batch:
                peer.dirty = False
                peer.write_out()


class H2Peer(asyncio.Protocol):
    client_side: ClassVar[bool]

    def __init__(self, flusher: Flusher, limits: H2Limits, stats: TcpStats,
                 clock: Callable[[], float]) -> None:  # fmt: skip
        self.flusher = flusher
        self.limits = limits
        self.stats = stats
        self.opened_at = stats.clock()  # its lifetime ends at `stats.close`
        self.conn = H2Codec(self.client_side, limits, self, clock)
        self.conn.initiate()
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, H2Exchange] = {}
        self.closed = False
        self.dirty = False
        self.paused_writing = False

    # -- output ----------------------------------------------------------------------------
    def write_out(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.stats.write_bytes += len(data)
            self.transport.write(data)

    def write_graceful_goaway(self, last_stream_id: int) -> None:
        self.conn.close_connection(ErrorCodes.NO_ERROR, last_stream_id)
        self.write_out()

    # -- input -----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.stats.read_bytes += len(data)
        self.received()
        try:
            self.conn.receive_data(data)
        except H2Error as exc:
            self.protocol_error(exc)
        flusher = self.flusher
        if not self.dirty:
            flusher.mark(self)
        flusher.flush_soon()

    def received(self) -> None:
        """Hook: a read arrived (idle tracking)."""

    def protocol_error(self, exc: H2Error) -> None:
        """The codec queued a GOAWAY with the error's code: send it and close."""
        self.write_out()
        if self.transport is not None and not self.closed:
            self.transport.close()

    def eof_received(self) -> bool | None:
        return None  # close: HTTP/2 has no use for a half-closed connection

    # -- codec events a side does not expect (the codec only sends each side its own) ------
    def on_request(self, sid: int, headers: Headers, ended: bool) -> None:
        """A new stream from the peer (server side)."""

    def on_response(self, sid: int, headers: Headers, ended: bool) -> None:
        """A final response head (client side)."""

    def on_informational(self, sid: int, headers: Headers) -> None:
        """A 1xx response head (client side)."""

    def on_settings(self) -> None:
        self.writable()

    # -- codec events both sides handle (overridden) ---------------------------------------
    def on_trailers(self, sid: int, headers: Headers) -> None:
        raise NotImplementedError

    def on_data(self, sid: int, data: bytes, flow: int, ended: bool) -> None:
        raise NotImplementedError

    def on_reset(self, sid: int, code: int) -> None:
        raise NotImplementedError

    def on_window(self, sid: int) -> None:
        raise NotImplementedError

    def on_goaway(self, code: int, last_sid: int) -> None:
        raise NotImplementedError

    # -- flow control towards this peer's socket -------------------------------------------
    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        self.writable()
        self.flusher.flush()

    def writable(self) -> None:
        """Hook: the transport took its buffer; streams waiting to send may send."""

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def set_transport(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
