"""The proxy's side of tap: which taps are open, and what each one has not read yet.

Cost when nobody taps: every `RouteStats` holds the process's one `TapPoint`, whose `hub`
is None; the place HTTP exchanges end (`proxy.exchange.Exchange`) checks it and moves on,
and the codecs keep a request's method and target on the exchange only while it is set.

When someone taps, the hub (set on the point while at least one tap is open) turns each
ended exchange into one `TapEvent` (built once, only if a tap is open) and offers it to
each tap: a tap takes it if its filter matches, its rate allows (`rps`, a token bucket on
the exchange's clock) and its queue has room (`queue_limit`); otherwise the event is
dropped and counted (`Tap.dropped`). Nothing here waits: a slow tapper loses events, the
data path never slows. `wake` is the tap server's callback (it sets an asyncio event);
`done` becomes true when `max` events were taken. No I/O, no asyncio.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from lacewing.proxy.metrics.proxy import TapPoint
from lacewing.proxy.tap.filter import TapEvent, TapFilter

if TYPE_CHECKING:
    from lacewing.proxy.exchange import Exchange

__all__ = ["DEFAULT_QUEUE_LIMIT", "Tap", "TapHub"]

DEFAULT_QUEUE_LIMIT = 1000
_IDENTITY_INFIX = ".serviceaccount.identity."


class Tap:
    """One open tap: its filter, its queue of encoded-to-be events, its counters."""

    def __init__(self, tap_filter: TapFilter, wake: Callable[[], None],
                 queue_limit: int = DEFAULT_QUEUE_LIMIT) -> None:  # fmt: skip
        self.filter = tap_filter
        self.wake = wake
        self.queue: deque[TapEvent] = deque()
        self.queue_limit = queue_limit
        self.taken = 0
        self.dropped = 0  # matched, but the queue was full or the rate limit said no
        self.done = False
        rate = tap_filter.rps
        self._tokens = rate if rate is not None else 0.0
        self._last = 0.0

    def offer(self, event: TapEvent, now: float) -> None:
        if self.done or not self.filter.matches(event):
            return
        rate = self.filter.rps
        if rate is not None:
            self._tokens = min(rate, self._tokens + (now - self._last) * rate)
            self._last = now
            if self._tokens < 1.0:
                self.dropped += 1
                return
            self._tokens -= 1.0
        if len(self.queue) >= self.queue_limit:
            self.dropped += 1
            return
        self.queue.append(event)
        self.taken += 1
        limit = self.filter.max_events
        if limit is not None and self.taken >= limit:
            self.done = True
        self.wake()


def _identity_end(identity: str) -> dict[str, str]:
    """An end known by its identity: SA.NS.serviceaccount... gives its namespace too."""
    if not identity:
        return {}
    head, sep, _ = identity.partition(_IDENTITY_INFIX)
    end = {"identity": identity}
    if sep and "." in head:
        end["namespace"] = head.rsplit(".", 1)[1]
    return end


class TapHub:
    """The open taps of one proxy; `point.hub` is this hub while any is open."""

    def __init__(self, point: TapPoint, local: dict[str, str],
                 wall: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.point = point
        self.local = {k: v for k, v in local.items() if v}  # this pod: namespace, pod, identity
        self.wall = wall
        self.taps: list[Tap] = []

    def open(self, tap: Tap) -> None:
        self.taps.append(tap)
        self.point.hub = self

    def close(self, tap: Tap) -> None:
        if tap in self.taps:
            self.taps.remove(tap)
        if not self.taps:
            self.point.hub = None

    def ended(self, ex: Exchange, now: float, grpc_status: int | None = None) -> None:
        """`ex` ended (its `status` set; 0: no response) at `now` on its clock."""
        if self.taps:
            event = self.event(ex, now, grpc_status)
            for tap in self.taps:
                tap.offer(event, now)

    def event(self, ex: Exchange, now: float, grpc_status: int | None = None) -> TapEvent:
        direction, authority, _target, labels = ex.route.key
        tls = dict(labels)
        if direction == "inbound":
            source = _identity_end(tls.get("client_id", ""))
            destination = dict(self.local)
        else:
            source = dict(self.local)
            destination = _identity_end(tls.get("server_id", ""))
            for key in ("namespace", "pod", "deployment"):
                value = tls.get("dst_" + key)
                if value:
                    destination[key] = value
        elapsed = now - ex.start
        ended = self.wall()
        return TapEvent(
            direction=direction,
            method=ex.method,
            authority=authority,
            path=ex.path,
            status=ex.status,
            latency_ms=elapsed * 1000.0,
            source=source,
            destination=destination,
            tls=tls.get("tls", ""),
            grpc_status=grpc_status,
            started=ended - elapsed,
            ended=ended,
        )
