"""Multiplexed upstream HTTP/2 connections, per endpoint, shared by every client connection
of a side.

`open(exchange, addr)` starts the exchange's stream on the newest connection to `addr` that
has room for one more stream; else it waits on a connection being opened (at most as many
waiters as a connection takes streams), else a new connection is opened for it (a named task
in `side.tasks`, through `side.connector`, so mutual TLS applies and offers ALPN `h2`).
A connection that fails to open fails its waiters (502 / gRPC UNAVAILABLE). A connection that
saw GOAWAY, ran out of stream ids or closed is forgotten (it finishes the streams it has).
`sweep()` closes connections that had no stream through two sweeps; `close_all()` at shutdown.

The pool also owns the side's `Flusher`: every HTTP/2 connection of the side writes through it.
`pool_of(side)` is the side's pool (`side.mux_pool`), made on first use.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lacewing.proxy.config import Addr
from lacewing.proxy.h2.client import H2Upstream
from lacewing.proxy.h2.peer import Flusher
from lacewing.proxy.h2.settings import DEFAULT_LIMITS, H2Limits
from lacewing.proxy.transport import ConnectError

if TYPE_CHECKING:
    from lacewing.proxy.h2.stream import H2Exchange
    from lacewing.proxy.side import Side

__all__ = ["H2Pool", "pool_of"]

log = logging.getLogger("lacewing.proxy")


class H2Pool:
    def __init__(self, side: Side, limits: H2Limits = DEFAULT_LIMITS) -> None:
        self.side = side
        self.limits = limits
        self.flusher = Flusher()
        self.conns: dict[Addr, list[H2Upstream]] = {}
        self.connecting: dict[Addr, list[H2Exchange]] = {}
        # the list in `conns` of the last address opened on (lists stay while the pool lives)
        self._last_addr: Addr | None = None
        self._last_conns: list[H2Upstream] = []

    def open(self, ex: H2Exchange, addr: Addr) -> None:
        conns: list[H2Upstream] | None = self._last_conns
        if addr is not self._last_addr:  # else the same endpoint as the last stream
            conns = self.conns.get(addr)
            if conns is not None:
                self._last_addr, self._last_conns = addr, conns
        for conn in reversed(conns or ()):
            if conn.has_capacity() and conn.start(ex):
                return
        waiters = self.connecting.get(addr)
        if waiters is not None and len(waiters) < self.limits.max_concurrent_streams:
            waiters.append(ex)
            return
        waiters = self.connecting[addr] = [ex]
        side = self.side
        side.tasks.spawn(self._connect(addr, waiters),
                         name=f"lacewing-h2-connect-{side.direction}-{addr}")  # fmt: skip

    async def _connect(self, addr: Addr, waiters: list[H2Exchange]) -> None:
        side = self.side
        stats = side.metrics.tcp_stats(side.direction, "dst", str(addr), side.peer_tls(addr))
        try:
            _, conn = await side.connector.connect(
                addr, lambda: H2Upstream(self, addr, stats, self.limits)
            )
        except ConnectError as exc:
            log.debug("h2 %s -> %s: %s", side.direction, addr, exc)
            self._done_waiting(addr, waiters)
            for ex in waiters:
                ex.fail(exc.reason)
            self.flusher.flush()
            return
        except BaseException:
            self._done_waiting(addr, waiters)
            raise
        self._done_waiting(addr, waiters)
        if not conn.closed:
            self.conns.setdefault(addr, []).append(conn)
        for ex in waiters:
            if ex.finished:
                continue
            if not (conn.has_capacity() and conn.start(ex)):
                self.open(ex, addr)
        self.flusher.flush()

    def _done_waiting(self, addr: Addr, waiters: list[H2Exchange]) -> None:
        if self.connecting.get(addr) is waiters:
            del self.connecting[addr]

    def forget(self, conn: H2Upstream) -> None:
        conns = self.conns.get(conn.addr)
        if conns is not None and conn in conns:
            conns.remove(conn)

    def sweep(self) -> None:
        for conns in self.conns.values():
            for conn in list(conns):
                if conn.streams:
                    conn.swept = False
                elif conn.swept:
                    conn.close()
                else:
                    conn.swept = True
        self.flusher.flush()

    def count(self) -> int:
        return sum(len(c) for c in self.conns.values())

    def close_all(self) -> None:
        for conns in list(self.conns.values()):
            for conn in list(conns):
                conn.close()
        self.flusher.flush()


def pool_of(side: Side) -> H2Pool:
    """The side's HTTP/2 pool, made on first use (the side layer knows no codec)."""
    pool = side.mux_pool
    if not isinstance(pool, H2Pool):
        pool = side.mux_pool = H2Pool(side)
    return pool
