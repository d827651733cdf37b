"""A mutual-TLS connection lives no longer than the certificates its handshake used.

TLS checks validity once, at the handshake. Without this, a pooled connection would carry
traffic for as long as it stays open on a certificate that expired because identity was
unreachable to renew it (ours, or the peer's). So after each handshake the connection is
watched until the earlier of this proxy's certificate's and the peer's notAfter; when that
passes on a connection still open, `on_expiry()` ends it gracefully (an inbound connection
drains: it closes after the request in flight; an idle pooled outbound one closes, a busy one
is not reused). New handshakes then fail on the expired certificate: traffic stops with a TLS
error until a renewal succeeds, and never falls back to plaintext. Renewed certificates do
not extend a connection: it is replaced by a new one, with the new certificate, once.

`ExpiryWatch` keeps one timer per distinct deadline (whole seconds; certificates share them:
one per renewal of ours or a peer's), not one per connection. A closed connection it still
held would keep its whole TLS state alive (uvloop's 256 KiB read buffer, the SSLObject,
OpenSSL's SSL: ~120 KiB of RSS each), so it lets go of them two ways: `watch()` returns
`forget`, which the inbound terminator calls when the TLS connection is lost (its TLS
protocol's `on_lost`); and for connections nobody forgets (outbound ones, made by the loop's
own TLS), it prunes closed entries once as many connections were watched since the last prune
as were still open after it (at least `PRUNE_MIN`): amortised O(1), and at most about as many
closed ones held as open ones. (Pruning every 256 watches held up to 256 closed connections:
+52-59 MiB over 50,000-handshake soaks.) Wall time comes from the injected `now`
(certificates are in wall time).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

__all__ = ["PRUNE_MIN", "ExpiryWatch", "cert_time", "peer_not_after"]

PRUNE_MIN = 16


_MONTHS = {
    name: number
    for number, name in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                   "Sep", "Oct", "Nov", "Dec"), start=1)
}  # fmt: skip


def cert_time(text: str) -> float:
    """OpenSSL's `Jun  9 12:00:00 2027 GMT` -> unix seconds. (Not `ssl.cert_time_to_seconds`:
    it imports `_strptime` lazily, which a proxy that dropped to uid 2102 may not be able to
    read by then.)"""
    month, day, clock, year = text.split()[:4]
    hour, minute, second = (int(part) for part in clock.split(":"))
    return datetime(
        int(year), _MONTHS[month], int(day), hour, minute, second, tzinfo=UTC
    ).timestamp()


def peer_not_after(transport: asyncio.BaseTransport) -> float | None:
    """The peer certificate's notAfter (unix seconds) on a verified TLS transport."""
    ssl_object = transport.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    not_after = cert.get("notAfter") if cert else None
    return cert_time(not_after) if not_after else None


def _nothing() -> None:
    pass


class ExpiryWatch:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.expired = 0  # connections ended because a certificate expired
        # deadline -> id(transport) -> (transport, on_expiry)
        self._due: dict[int, dict[int, tuple[asyncio.BaseTransport, Callable[[], None]]]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._since_prune = 0  # watches since the last prune
        self._open_at_prune = 0  # connections still open after it

    def watch(
        self, transport: asyncio.BaseTransport, own_not_after: float | None,
        on_expiry: Callable[[], None],
    ) -> Callable[[], None]:  # fmt: skip
        """Call `on_expiry()` once the earlier certificate of this connection has expired.

        Returns `forget`: call it when the connection ends, so it is let go of at once."""
        times = [t for t in (own_not_after, peer_not_after(transport)) if t is not None]
        if not times:
            return _nothing
        deadline = math.ceil(min(times))
        due = self._due.get(deadline)
        if due is None:
            due = self._due[deadline] = {}
            loop = asyncio.get_running_loop()
            self._timers[deadline] = loop.call_later(
                max(0.0, deadline - self.now()), self._fire, deadline
            )
        key = id(transport)  # (not reused while it is held here)
        due[key] = (transport, on_expiry)
        self._since_prune += 1
        if self._since_prune >= max(PRUNE_MIN, self._open_at_prune):
            self._prune()
        return partial(self._forget, deadline, key)

    def _forget(self, deadline: int, key: int) -> None:
        due = self._due.get(deadline)
        if due is not None and due.pop(key, None) is not None and not due:
            del self._due[deadline]
            self._timers.pop(deadline).cancel()

    def __len__(self) -> int:
        return sum(len(due) for due in self._due.values())

    def _fire(self, deadline: int) -> None:
        self._timers.pop(deadline, None)
        for transport, on_expiry in self._due.pop(deadline, {}).values():
            if not transport.is_closing():
                self.expired += 1
                on_expiry()

    def _prune(self) -> None:
        for deadline, due in list(self._due.items()):
            for key in [key for key, entry in due.items() if entry[0].is_closing()]:
                del due[key]
            if not due:
                del self._due[deadline]
                self._timers.pop(deadline).cancel()
        self._since_prune, self._open_at_prune = 0, len(self)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._due.clear()
