"""One HTTP request/response as the proxy's HTTP stack sees it, whatever codec carried it.

A codec (`http1/`, `h2/`) parses a request head, takes a `Pick` from `side.pick(logical)`
and the request's `RouteStats`, and makes an `Exchange`. From then on it reports only what
happened on the wire, and the exchange turns that into the two things every ending must
produce exactly once, the response metrics and the balancer's outcome:

    codec reports                         metrics (response_total, latency)   pick
    answered(status, now)  response head  status; latency at first_byte(now)  done(ok)
    first_byte(now)        its first body (the first body byte or its end:
                           byte, or end   time to first byte, as Linkerd)
    failed(status, now)    the endpoint   the proxy's own status (502, 504)   fail()
                           could not be
                           reached / died
                           before answering
    refused(status, now)   the proxy      the proxy's own status (4xx)        cancel()
                           answered for
                           other reasons
    abandoned()            nothing more   (no response: none)                 cancel()
                           will happen
                           (client gone,
                           shutdown)

Only the first report counts (a response that already started and then breaks is still the
status it started with); `ended` says whether one came. A request that took a route
(`routed`, from `proxy.routes.Router`) is also counted on that route's metrics when it ends
(answered or the proxy's own status), and `attempts` counts its retries; the codec owns its
deadline timer and replay buffer, as only it knows how the bytes travel.

Tap (`proxy.tap`): an ending also checks `route.tap.hub`, None unless someone taps; when
set, the hub gets the ended exchange (`tapped`). While it is set the codecs keep the
request's `method` and `path` on the exchange (`tapping`); otherwise they stay empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lacewing.proxy.metrics import RouteStats
from lacewing.proxy.targets import Pick

if TYPE_CHECKING:
    from lacewing.proxy.routes import Routed

__all__ = ["Exchange"]


class Exchange:
    """One request/response; attributes default at class level (HTTP/1 builds one per
    request, and subclasses add their own flags the same way)."""

    status = 0  # the response status once answered (or the proxy's own)
    pick: Pick | None = None
    ended = False
    routed: Routed | None = None  # the route it took (None: the destination has no routes)
    attempts = 0  # retries sent
    method = ""  # kept only while someone taps (`tapping`)
    path = ""
    ttfb = False  # answered; its response metrics wait for the first body byte (`first_byte`)
    head_at = 0.0  # when the response head came

    def __init__(self, route: RouteStats, start: float, pick: Pick | None = None) -> None:
        self.route, self.start = route, start
        if pick is not None:
            self.pick = pick

    def answered(self, status: int, now: float) -> None:
        """The endpoint's response head is on its way to the client (its response metrics wait
        for `first_byte`, but for a 101: an upgraded connection has no HTTP body)."""
        if self.ended:
            return
        self.ended = True
        self.status = status
        self.head_at = now
        elapsed = now - self.start
        if status == 101:
            self.route.response(status, elapsed * 1000.0)
        else:
            self.ttfb = True
        pick = self.pick
        routed = self.routed
        if routed is not None:
            if status < 500 and pick is not None and pick.ticket is not None:
                pick.ticket.done(True, elapsed)  # (`end_pick`'s common case, inline)
            else:
                self.end_pick(status, elapsed)
            plan = routed.plan
            if plan is not None:  # (`_count_route`, inline)
                plan.stats.response(status, elapsed)
                if self.attempts and 0 < status < 500:
                    plan.stats.retry_successes += 1
        elif pick is not None and pick.ticket is not None:
            pick.ticket.done(True, elapsed)
        hub = self.route.tap.hub
        if hub is not None:
            hub.ended(self, now)

    def first_byte(self, now: float) -> None:
        """The response's first body byte came (or it ended without one): `response_total` and
        `response_latency_ms` count it now, time to first byte, as Linkerd measures."""
        if self.ttfb:
            self.ttfb = False
            self.route.response(self.status, (now - self.start) * 1000.0)

    def tapping(self) -> bool:
        """Is someone tapping? (a codec then keeps `method` and `path` on the exchange)"""
        return self.route.tap.hub is not None

    def tapped(self, now: float, grpc_status: int | None = None) -> None:
        """Tell an open tap that this exchange ended (codecs that end it themselves)."""
        hub = self.route.tap.hub
        if hub is not None:
            hub.ended(self, now, grpc_status)

    def end_pick(self, status: int, elapsed: float) -> None:
        """End the pick for an answer: a success, or with the route's failure accrual on, a
        5xx that counts towards ejecting the endpoint (circuit breaking)."""
        pick = self.pick
        if pick is None:
            return
        if status >= 500:
            rule = self.routed.rule if self.routed is not None else None
            if rule is not None and rule.failure_accrual:
                pick.fail_response(rule.failure_accrual)
                return
        pick.done(True, elapsed)

    def failed(self, status: int, now: float) -> None:
        """The endpoint could not be reached, or failed before answering: the proxy answers."""
        if self.pick is not None:
            self.pick.fail()
        self._own(status, now)

    def refused(self, status: int, now: float) -> None:
        """The proxy answers `status` itself for reasons that say nothing about the endpoint."""
        if self.pick is not None:
            self.pick.cancel()
        self._own(status, now)

    def abandoned(self) -> None:
        """The exchange ends with no further outcome (client gone, connection aborted)."""
        if self.pick is not None:
            self.pick.cancel()
        self.ended = True
        if self.ttfb:  # answered, then broken before any body: counted at its head
            self.first_byte(self.head_at)

    def _own(self, status: int, now: float) -> None:
        if self.ended:
            if self.ttfb:  # answered, then failed before any body
                self.first_byte(now)
            return
        self.ended = True
        self.status = status
        self.route.response(status, (now - self.start) * 1000.0)
        if self.routed is not None:
            self._count_route(status, now - self.start)
        hub = self.route.tap.hub
        if hub is not None:
            hub.ended(self, now)

    def _count_route(self, status: int, seconds: float) -> None:
        plan = self.routed.plan if self.routed is not None else None
        if plan is None:
            return
        stats = plan.stats
        stats.response(status, seconds)
        if self.attempts and 0 < status < 500:
            stats.retry_successes += 1
