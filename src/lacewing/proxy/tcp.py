"""Opaque TCP relay: two `TunnelEnd` protocols, one per socket, each writing into the other.

Flow control lives here and only here for byte streams: when one side's transport buffer
passes its high-water mark asyncio calls `pause_writing()` on that side's protocol, which
pauses *reading* on the peer; `resume_writing()` resumes it. So a slow reader holds at most
one transport buffer (64 KiB high-water by default) per direction, whatever the writer does.

Bytes that arrive before the peer is attached (uvloop may deliver data right after
`connection_made`, even when reading was paused) are kept and reading is paused until
`attach`. A half-close (EOF) is passed on with `write_eof`; the pair closes when both
directions ended or either socket is lost. Opaque ports, HTTP/2 prior knowledge, TLS pass-
through and upgraded HTTP connections (WebSocket) all end up here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from lacewing.proxy.metrics import TcpStats

__all__ = ["TunnelConn", "TunnelEnd", "join"]


class TunnelEnd(asyncio.Protocol):
    __slots__ = ("_eof", "_on_lost", "_pending", "closed", "opened_at", "peer", "stats",
                 "transport")  # fmt: skip

    def __init__(self, stats: TcpStats, on_lost: Callable[[], None] | None = None) -> None:
        self.stats = stats
        self.opened_at = stats.clock()
        self.transport: asyncio.Transport | None = None
        self.peer: TunnelEnd | None = None
        self._pending: list[bytes] = []
        self._eof = False
        self.closed = False
        self._on_lost = on_lost

    # -- wiring ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def adopt(self, transport: asyncio.Transport, early: bytes = b"") -> None:
        """Take over a transport that another protocol (detection, HTTP) was reading."""
        transport.set_protocol(self)
        self.transport = transport
        if early:
            self.data_received(early)

    def attach(self, peer: TunnelEnd) -> None:
        self.peer = peer
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._deliver(data)
        if self._eof:
            self._pass_eof()
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # -- data --------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.stats.read_bytes += len(data)
        if self.peer is None:
            self._pending.append(data)
            if self.transport is not None:
                self.transport.pause_reading()
            return
        self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        peer = self.peer
        assert peer is not None
        if peer.closed or peer.transport is None:
            return
        peer.stats.write_bytes += len(data)
        peer.transport.write(data)

    def eof_received(self) -> bool:
        self._eof = True
        if self.peer is not None:
            self._pass_eof()
        return True  # keep our write side open until the peer is done too

    def _pass_eof(self) -> None:
        peer = self.peer
        assert peer is not None
        if peer.closed or peer.transport is None:
            return
        if peer._eof or not peer.transport.can_write_eof():
            peer.transport.close()
            if self.transport is not None:
                self.transport.close()
        else:
            peer.transport.write_eof()

    # -- flow control ------------------------------------------------------------------
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.stats.close(exc, self.opened_at)
        peer = self.peer
        if peer is not None and not peer.closed and peer.transport is not None:
            if exc is None:
                peer.transport.close()  # flushes what is buffered, then closes
            else:
                peer.transport.abort()
        if self._on_lost is not None:
            self._on_lost()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def join(a: TunnelEnd, b: TunnelEnd) -> None:
    """Make `a` and `b` relay into each other (both must have their transports)."""
    a.attach(b)
    b.attach(a)


class TunnelConn:
    """side.Conn for a tunnel (an upgraded HTTP connection): only the shutdown deadline ends
    it; it is never idle-swept, since long quiet WebSockets are normal."""

    def __init__(self, end: TunnelEnd) -> None:
        self.end = end

    def drain(self) -> None:
        pass

    def sweep_idle(self) -> None:
        pass

    def abort(self) -> None:
        self.end.abort()
