"""Idle keep-alive upstream connections, per endpoint, last-in first-out.

`take` returns the most recently used open connection (warm, least likely to have been closed
by the server); `put` keeps at most `cap` idle per endpoint and closes the rest; a connection
that the server closes while idle removes itself (`discard`). `sweep` closes connections that
stayed idle through two sweeps (the server's idle sweeper calls it every half idle-timeout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lacewing.proxy.config import Addr

if TYPE_CHECKING:
    from lacewing.proxy.http1.upstream import UpstreamConn

__all__ = ["Pool"]


class Pool:
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.idle: dict[Addr, list[UpstreamConn]] = {}

    def bucket(self, endpoint: Addr) -> list[UpstreamConn]:
        """The idle list of `endpoint`; callers keep it to skip hashing per request."""
        return self.idle.setdefault(endpoint, [])

    def take(self, endpoint: Addr) -> UpstreamConn | None:
        return self.take_from(self.bucket(endpoint))

    def take_from(self, conns: list[UpstreamConn]) -> UpstreamConn | None:
        while conns:
            conn = conns.pop()
            if not conn.closed:
                return conn
        return None

    def put(self, conn: UpstreamConn) -> None:
        conns = conn.home
        if len(conns) >= self.cap or conn.closed:
            conn.close()
            return
        conn.swept = False
        conns.append(conn)

    def discard(self, conn: UpstreamConn) -> None:
        conns = conn.home
        if conn in conns:
            conns.remove(conn)

    def sweep(self) -> None:
        for conns in self.idle.values():
            for conn in list(conns):
                if conn.swept:
                    conns.remove(conn)
                    conn.close()
                else:
                    conn.swept = True

    def count(self) -> int:
        return sum(len(c) for c in self.idle.values())

    def close_all(self) -> None:
        for conns in self.idle.values():
            for conn in conns:
                conn.close()
            conns.clear()
