"""Idle keep-alive upstream connections, per endpoint address, last-in first-out.

Any protocol's upstream connection can be pooled: it only needs the `Pooled` attributes.

`take` returns the most recently used open connection (warm, least likely to have been closed
by the server); `put` keeps at most `cap` idle per endpoint and closes the rest; a connection
that the server closes while idle removes itself (`discard`). `sweep` closes connections that
stayed idle through two sweeps (the server's idle sweeper calls it every half idle-timeout).
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from lacewing.proxy.config import Addr

__all__ = ["Pool", "Pooled"]


class Pooled(Protocol):
    """What the pool needs from a connection."""

    closed: bool
    swept: bool  # idle through one sweep already: the next one closes it

    @property
    def home(self) -> list[Pooled]:
        """The pool bucket this connection returns to (`Pool.bucket(its endpoint)`)."""

    def close(self) -> None: ...


C = TypeVar("C", bound=Pooled)


class Pool(Generic[C]):
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.idle: dict[Addr, list[C]] = {}

    def bucket(self, endpoint: Addr) -> list[C]:
        """The idle list of `endpoint`; callers keep it to skip hashing per request."""
        return self.idle.setdefault(endpoint, [])

    def take(self, endpoint: Addr) -> C | None:
        return self.take_from(self.bucket(endpoint))

    def take_from(self, conns: list[C]) -> C | None:
        while conns:
            conn = conns.pop()
            if not conn.closed:
                return conn
        return None

    def put(self, conn: C) -> None:
        conns = conn.home
        if len(conns) >= self.cap or conn.closed:
            conn.close()
            return
        conn.swept = False
        conns.append(conn)

    def discard(self, conn: C) -> None:
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
