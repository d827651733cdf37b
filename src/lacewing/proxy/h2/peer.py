"""What both ends of an HTTP/2 hop share: an `h2` state machine driven by a thin Protocol.

`H2Peer` owns one `H2Connection` (sans-I/O) and one transport. `data_received` feeds bytes
to `h2` and hands each event to the subclass's handler (`HANDLERS`, a table keyed by event
type); what `h2` wants to send is written once per batch, not once per event: anything that
changes a connection marks it in the side's `Flusher`, and every entry point (a read, a
connect, a timer, a resume) ends with `flusher.flush()`, one `transport.write` per connection.

A malformed frame makes `h2` raise `ProtocolError` after queueing a GOAWAY with the error's
code: the peer writes it and closes; its streams end as `connection_lost` says. An overlong
frame is refused as soon as more bytes than the largest allowed frame are waiting (`h2`
itself would buffer a frame's whole announced length, up to 16 MiB, before checking it).

GOAWAY with NO_ERROR is graceful (RFC 9113 6.8): streams up to its last stream id go on.
`h2` instead moves its connection state machine to CLOSED when it sends or receives any
GOAWAY, after which every frame of those streams is a ProtocolError. So the graceful GOAWAY
we send is a frame written past `h2` (`write_graceful_goaway`), and after receiving one we
put the state machine back to open (`keep_open`) until the last stream ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from h2.connection import ConnectionState
from h2.errors import ErrorCodes
from h2.exceptions import FrameTooLargeError, ProtocolError
from hyperframe.frame import GoAwayFrame

from lacewing.proxy.h2.settings import H2Limits, new_connection
from lacewing.proxy.metrics import TcpStats

if TYPE_CHECKING:
    from lacewing.proxy.h2.stream import H2Exchange

__all__ = ["Flusher", "H2Peer"]


class Flusher:
    """Connections with bytes to write, written out together at the end of a batch."""

    __slots__ = ("dirty",)

    def __init__(self) -> None:
        self.dirty: list[H2Peer] = []

    def mark(self, peer: H2Peer) -> None:
        if not peer.dirty:
            peer.dirty = True
            self.dirty.append(peer)

    def flush(self) -> None:
        while self.dirty:
            batch, self.dirty = self.dirty, []
            for peer in batch:
                peer.dirty = False
                peer.write_out()


class H2Peer(asyncio.Protocol):
    client_side: ClassVar[bool]
    HANDLERS: ClassVar[dict[type, Callable[[Any, Any], None]]] = {}

    def __init__(self, flusher: Flusher, limits: H2Limits, stats: TcpStats) -> None:
        self.flusher = flusher
        self.limits = limits
        self.stats = stats
        self.conn = new_connection(self.client_side, limits)
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
        self.write_out()  # frames h2 queued go first
        frame = GoAwayFrame(0)
        frame.last_stream_id = last_stream_id
        frame.error_code = 0
        data = frame.serialize()
        if self.transport is not None and not self.closed:
            self.stats.write_bytes += len(data)
            self.transport.write(data)

    def keep_open(self) -> None:
        """After a graceful GOAWAY from the peer: let the streams it will still serve finish."""
        self.conn.state_machine.state = (
            ConnectionState.CLIENT_OPEN if self.client_side else ConnectionState.SERVER_OPEN
        )

    # -- input -----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.stats.read_bytes += len(data)
        self.received()
        try:
            events = self.conn.receive_data(data)
        except ProtocolError as exc:
            self.protocol_error(exc)
            self.flusher.mark(self)
            self.flusher.flush()
            return
        handlers = self.HANDLERS
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(self, event)
        if len(self.conn.incoming_buffer._data) > self.conn.max_inbound_frame_size + 9:
            self.frame_too_large()
        self.flusher.mark(self)
        self.flusher.flush()

    def frame_too_large(self) -> None:
        """What is left unparsed is longer than any frame we allow: `h2` would wait for the
        whole of it (up to 16 MiB) before refusing it; we refuse it now."""
        self.conn.incoming_buffer._data.clear()
        self.conn.close_connection(ErrorCodes.FRAME_SIZE_ERROR)
        self.protocol_error(FrameTooLargeError("frame larger than SETTINGS_MAX_FRAME_SIZE"))

    def received(self) -> None:
        """Hook: a read arrived (idle tracking)."""

    def protocol_error(self, exc: ProtocolError) -> None:
        """h2 queued a GOAWAY with the error's code: send it and close."""
        self.write_out()
        if self.transport is not None and not self.closed:
            self.transport.close()

    def eof_received(self) -> bool | None:
        return None  # close: HTTP/2 has no use for a half-closed connection

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
