"""One request/response exchange: a client's stream on an accepted connection paired with a
stream on an upstream connection, and everything that ends it.

    client --HEADERS/DATA/trailers--> H2Server --to_up-->   H2Upstream --> endpoint
    client <--HEADERS/DATA/trailers-- H2Server <--to_down-- H2Upstream <-- endpoint

Flow control, both directions the same way (`_pump`): DATA read from one side waits in that
direction's queue until the other side's send window (stream and connection) and its
transport (not paused) let it go; only then is it acknowledged to the side it came from,
which reopens that side's window. So a slow reader stops its writer through HTTP/2's own
windows, and what the proxy holds per connection is bounded by the windows it grants
(`H2Limits`). Bytes that are dropped (a stream reset, a response that ended first) are
acknowledged too, so the connection window never leaks.

It is a `proxy.exchange.Exchange`, told once how it ended (the first report wins, so the
`Pick` gets exactly one outcome and the response is counted once):

    response head from the endpoint   answered: pick.done(True, latency), counted
    could not connect                 failed: pick.fail(); 502 / gRPC 14 trailers-only answer
    endpoint lost, no head yet        failed: pick.fail(); 502 / gRPC 14
    endpoint reset, no head yet       failed (status 0): pick.fail(); the same RST code on
    endpoint lost after the head      RST INTERNAL_ERROR to the client (already answered)
    no frame for `stream_idle_s`      before the head: failed, 504 / gRPC 4 (DEADLINE_EXCEEDED);
                                      after it: RST CANCEL both ways (`timed_out`)
    inbound policy denied it          refused: pick.cancel(); 403 / gRPC 7 (PERMISSION_DENIED)
    endpoint refused it (GOAWAY past the stream, REFUSED_STREAM)
                                      pick.cancel(); sent again once on a new pick (`_retry`)
                                      if no answer and no request DATA went yet; else
                                      abandoned: RST REFUSED_STREAM (the client may retry)
    client reset or gone              abandoned: pick.cancel(); its RST code to the endpoint
    (routed) lost or reset, no head   first, the route's retry as for a 502 / gRPC 14 answer
                                      (`_route_retry`, `h2.routing`): pick.fail(), sent again
    both ends done                    the streams leave their connections (`finish`)

gRPC (`content-type: application/grpc...`): the head ends the pick as above, but the response
is counted when its `grpc-status` is known (trailers, or a trailers-only response), with a
`grpc_status` label and classified by it, as Linkerd's `response_total` is; a gRPC response
that ends without one (reset, lost) counts as a failure.

A stream that took a route (`routed`) also goes through the route layer's steps
(`h2.routing`: filters, timeouts, retries) and is counted on its route's
metrics when it ends (gRPC: at its grpc-status, on the `outbound_grpc_route_*` families when
the route is a GRPCRoute).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from lacewing.core.grpc_routes import GRPC_FAILURES
from lacewing.proxy.exchange import Exchange
from lacewing.proxy.h2 import routing
from lacewing.proxy.h2.frames import ErrorCodes
from lacewing.proxy.h2.headers import (
    GRPC_DEADLINE_EXCEEDED,
    GRPC_PERMISSION_DENIED,
    GRPC_UNAVAILABLE,
    Headers,
    error_headers,
    grpc_status,
)
from lacewing.proxy.metrics import RouteStats

if TYPE_CHECKING:
    from lacewing.proxy.h2.client import H2Upstream
    from lacewing.proxy.h2.peer import H2Peer
    from lacewing.proxy.h2.server import H2Server
    from lacewing.proxy.targets import Logical, Pick

__all__ = ["H2Exchange"]

_NO_DATA: Any = ()  # an exchange's queue before anything waited in it (see `H2Exchange.to_up`)


class H2Exchange(Exchange):
    # Flags and fields most exchanges never change are class attributes (as `Exchange`'s
    # are): an instance sets only what differs, which a stream per request makes worth it.
    timer: asyncio.TimerHandle | None = None  # a route's request timeout (`h2.routing`)
    try_timer: asyncio.TimerHandle | None = None  # this attempt's timeout
    hold: asyncio.TimerHandle | None = None  # an injected delay
    try_timeout = 0.0
    replay: list[bytes] | None = None  # the request DATA, while it fits MAX_REPLAY
    replay_size = 0
    up: H2Upstream | None = None
    up_sid = 0
    req_ended = False
    req_trailers: Headers | None = None
    up_end_sent = False
    resp_ended = False
    resp_trailers: Headers | None = None
    down_end_sent = False
    head_ms = 0.0
    counted = False  # gRPC: counted at its status, after the head
    finished = False
    pick_elapsed: float | None = None  # gRPC with failure accrual: its pick ends later
    touched = True  # a frame either way since the last sweep (`timed_out`)
    logical: Logical | None = None  # what was picked for (a retry picks again)
    authority = ""
    sent_up = False  # request DATA went to the endpoint (no retry after that)
    retried = False
    # DATA waiting for the other side's window, [data, flow-controlled length] each; an
    # exchange whose DATA always goes on at once (most) never makes its queues
    to_up: deque[list[object]] = _NO_DATA
    to_down: deque[list[object]] = _NO_DATA

    def __init__(self, down: H2Server, sid: int, headers: Headers, grpc: bool,
                 route: RouteStats, start: float, pick: Pick | None) -> None:  # fmt: skip
        self.down = down
        self.down_sid = sid
        self.headers = headers
        self.grpc = grpc
        self.route, self.start = route, start  # (`Exchange.__init__`, inlined)
        if pick is not None:
            self.pick = pick
        self.sent_at = start  # when its HEADERS went to the endpoint (`H2Upstream.start`)
        self.quiet_since = start

    # -- how it ended (proxy.exchange.Exchange, plus gRPC's deferred count) -----------------
    def _head(self, status: int) -> None:
        """The response head came: counted (gRPC: at its status) with the latency the client
        saw; the balancer is told the endpoint's own latency, from when the stream went out
        on a connection, so the one-off cost of connecting (a TLS handshake) does not count
        against the first endpoints a channel reaches."""
        if self.ended:
            return
        now = self.down.side.clock()
        self.ended = True
        self.status = status
        elapsed = now - self.start
        if self.grpc:
            self.head_ms = elapsed * 1000.0
        else:
            self.head_at = now
            self.ttfb = True  # counted at the first DATA frame, or the stream's end
            if self.route.tap.hub is not None:
                self.tapped(now)
        if self.routed is not None:
            rule = self.routed.rule
            if self.grpc and rule is not None and rule.failure_accrual:
                self.pick_elapsed = now - self.sent_at  # ended at its grpc-status
                return
            self.end_pick(200 if self.grpc else status, now - self.sent_at)
            if not self.grpc:
                self._count_route(status, elapsed)
            return
        pick = self.pick
        if pick is not None and pick.ticket is not None:
            pick.done(True, now - self.sent_at)

    def _failed(self, status: int, code: int | None) -> None:
        """The endpoint failed before answering; `status`/`code` are what is counted."""
        if self.ended:
            return
        now = self.down.side.clock()
        if not self.grpc:
            self.failed(status, now)
            return
        if self.pick is not None:
            self.pick.fail()
        self.ended = True
        self.status = status
        self.head_ms = (now - self.start) * 1000.0
        self._count_grpc(code)

    def _abandoned(self) -> None:
        if not self.ended:
            self.abandoned()
        elif self.ttfb:  # (its end: the response had no DATA, or broke before any)
            self.first_byte(self.down.side.clock())
        elif self.grpc and not self.counted:
            self._count_grpc(None)  # answered, then broken before its status

    def end_grpc_pick(self, code: int | None, elapsed: float) -> None:
        """End the pick of a routed gRPC call at its grpc-status: with the route's failure
        accrual on, a code of `GRPC_FAILURES` counts towards ejecting the endpoint."""
        pick, rule = self.pick, self.routed.rule if self.routed is not None else None
        if pick is None:
            return
        if code in GRPC_FAILURES and rule is not None and rule.failure_accrual:
            pick.fail_response(rule.failure_accrual)
        else:
            pick.done(True, elapsed)

    def _count_grpc(self, code: int | None) -> None:
        if self.pick_elapsed is not None:  # (failure accrual: the pick waited for the status)
            elapsed, self.pick_elapsed = self.pick_elapsed, None
            self.end_grpc_pick(code, elapsed)
        if not self.counted:
            self.counted = True
            self.route.grpc_response(self.status, code, self.head_ms)
            self.tapped(self.down.side.clock(), code)
            plan = self.routed.plan if self.routed is not None else None
            if plan is not None:
                seconds = self.down.side.clock() - self.start
                plan.stats.grpc_response(code, seconds)
                if self.attempts and code == 0:
                    plan.stats.retry_successes += 1

    def grpc_own(self, code: int) -> None:
        """A gRPC call the proxy answers itself with `code` (trailers-only): counted so."""
        if self.pick is not None:
            self.pick.cancel()
        self.ended, self.status = True, 200
        self.head_ms = (self.down.side.clock() - self.start) * 1000.0
        self._count_grpc(code)

    # -- moving DATA -----------------------------------------------------------------------
    def pump_up(self) -> None:
        """Send what the client sent on to the endpoint, as far as windows allow."""
        up = self.up
        if up is None or self.up_end_sent or up.closed:
            return
        ended = False
        if self.to_up and not up.paused_writing:
            end = self.req_ended and self.req_trailers is None
            acked, ended = _pump(self.to_up, up, self.up_sid, end)
            if acked:
                self.touched = self.sent_up = True
                self.down.conn.acknowledge_received_data(acked, self.down_sid)
                self.down.flusher.mark(self.down)
        if not self.to_up and self.req_ended:
            self.up_end_sent = True
            if ended:
                pass
            elif self.req_trailers is not None:
                up.conn.send_headers(self.up_sid, self.req_trailers, end_stream=True)
            else:
                up.conn.end_stream(self.up_sid)
            up.flusher.mark(up)
            if self.down_end_sent:
                self.finish()

    def pump_down(self) -> None:
        """Send what the endpoint sent on to the client, as far as windows allow."""
        down = self.down
        if self.down_end_sent or down.closed or not self.status:
            return
        ended = False
        if self.to_down and not down.paused_writing:
            end = self.resp_ended and self.resp_trailers is None
            acked, ended = _pump(self.to_down, down, self.down_sid, end)
            if acked:
                self.touched = True
            up = self.up
            if acked and up is not None and not up.closed:
                up.conn.acknowledge_received_data(acked, self.up_sid)
                up.flusher.mark(up)
        if not self.to_down and self.resp_ended:
            self.down_end_sent = True
            if ended:
                pass
            elif self.resp_trailers is not None:
                down.conn.send_headers(self.down_sid, self.resp_trailers, end_stream=True)
            else:
                down.conn.end_stream(self.down_sid)
            down.flusher.mark(down)
            if self.grpc:
                trailers = self.resp_trailers
                self._count_grpc(grpc_status(trailers) if trailers is not None else None)
            self._response_done()

    def _response_done(self) -> None:
        """The client has the whole response; an upload still going is not wanted."""
        if self.up_end_sent:
            self.finish()
            return
        self._drop(self.to_up, self.down, self.down_sid)
        if not self.down.closed:
            self.down.conn.reset_stream(self.down_sid, ErrorCodes.NO_ERROR)
        up = self.up
        if up is not None and not up.closed:
            up.conn.reset_stream(self.up_sid, ErrorCodes.CANCEL)
            up.flusher.mark(up)
        self.finish()

    # -- events from the client (H2Server) -------------------------------------------------
    def request_data(self, data: bytes, flow: int, ended: bool) -> None:
        self.touched = True
        queue = self.to_up
        if queue is _NO_DATA:
            queue = self.to_up = deque()
        queue.append([data, flow])
        if self.replay is not None:
            routing.keep(self, data)
        if ended:
            self.req_ended = True
        self.pump_up()

    def request_ended(self, trailers: Headers | None = None) -> None:
        if trailers is not None:
            self.req_trailers = trailers
        self.req_ended = True
        self.pump_up()

    def reset_by_client(self, code: int) -> None:
        """The client reset its stream (or went away: `code` CANCEL)."""
        if self.finished:
            return
        self._abandoned()
        self.down_end_sent = True
        self._drop(self.to_up, self.down, self.down_sid)
        up = self.up
        if up is not None and not up.closed:
            self._drop(self.to_down, up, self.up_sid)
            up.conn.reset_stream(self.up_sid, code)
            up.flusher.mark(up)
        self.finish()

    # -- events from the endpoint (H2Upstream) ---------------------------------------------
    def informational(self, headers: Headers) -> None:
        if not self.down.closed and not self.down_end_sent:
            self.down.conn.send_headers(self.down_sid, headers)
            self.down.flusher.mark(self.down)

    def response_head(self, headers: Headers, ended: bool) -> None:
        raw = headers[0][1]  # the codec checked: `:status` first, three digits
        status = int(raw)
        if self.routed is not None and not self.ended:
            code = grpc_status(headers) if self.grpc and ended else None
            if routing.route_retry(self, status, code):
                return
        self._head(status)
        down = self.down
        if down.closed or self.down_end_sent:
            return
        out = headers if self.routed is None else routing.response_fields(self, list(headers))
        if ended:  # trailers-only (gRPC errors): one HEADERS frame with END_STREAM
            self.resp_ended = True
            self.down_end_sent = True
            down.conn.send_headers(self.down_sid, out, end_stream=True)
            down.flusher.mark(down)
            if self.grpc:
                self._count_grpc(grpc_status(headers))
            self._response_done()
            return
        down.conn.send_headers(self.down_sid, out)
        down.flusher.mark(down)

    def response_data(self, data: bytes, flow: int, ended: bool) -> None:
        if self.ttfb:  # the first DATA frame: time to first byte
            self.first_byte(self.down.side.clock())
        self.touched = True
        if ended:
            self.resp_ended = True
        down = self.down
        # the fast path (`pump_down` without the queue): nothing waits before this frame
        if (
            not self.to_down
            and self.status
            and not self.down_end_sent
            and not down.closed
            and not down.paused_writing
            and down.conn.try_send_data(self.down_sid, data, ended)
        ):
            if not down.dirty:
                down.flusher.mark(down)
            up = self.up
            if flow and up is not None and not up.closed:
                up.conn.acknowledge_received_data(flow, self.up_sid)
                up.flusher.mark(up)
            if ended:
                self.down_end_sent = True
                if self.grpc:
                    self._count_grpc(None)  # ended without trailers: no grpc-status
                self._response_done()
            return
        queue = self.to_down
        if queue is _NO_DATA:
            queue = self.to_down = deque()
        queue.append([data, flow])
        self.pump_down()

    def response_ended(self, trailers: Headers | None = None) -> None:
        if self.resp_ended:
            return
        if trailers is not None:
            self.resp_trailers = trailers
        self.resp_ended = True
        self.pump_down()

    def reset_by_endpoint(self, code: int) -> None:
        if self.finished:
            return
        if code == ErrorCodes.REFUSED_STREAM and self._retry():
            return
        if self._route_retry("refused" if code == ErrorCodes.REFUSED_STREAM else "failed"):
            return
        if code == ErrorCodes.REFUSED_STREAM and not self.ended:
            self.abandoned()  # not processed there: says nothing about the endpoint
        elif self.ended:
            self._abandoned()
        else:
            self._failed(0, None)
        self.up_end_sent = True
        up = self.up
        if up is not None:
            self._drop(self.to_down, up, self.up_sid)
        self._drop(self.to_up, self.down, self.down_sid)
        if not self.down.closed and not self.down_end_sent:
            self.down.conn.reset_stream(self.down_sid, code)
            self.down.flusher.mark(self.down)
        self.down_end_sent = True
        self.finish()

    def endpoint_lost(self, reason: str) -> None:
        """The upstream connection is gone (closed, reset, protocol error)."""
        if self.finished or self._route_retry("failed"):
            return
        self.up_end_sent = True
        if self.to_down:
            self.to_down.clear()  # that connection's window no longer matters
        if self.ended:
            self._abandoned()
            self._drop(self.to_up, self.down, self.down_sid)
            if not self.down.closed and not self.down_end_sent:
                self.down.conn.reset_stream(self.down_sid, ErrorCodes.INTERNAL_ERROR)
                self.down.flusher.mark(self.down)
            self.down_end_sent = True
            self.finish()
            return
        self.fail(reason)

    def refused_by_endpoint(self) -> None:
        """Past the endpoint's GOAWAY: never processed there; retried, or the client may."""
        up = self.up
        if up is not None:
            up.conn.forget_stream(self.up_sid)
        self.reset_by_endpoint(ErrorCodes.REFUSED_STREAM)

    def _retry(self) -> bool:
        """The endpoint refused the stream (REFUSED_STREAM, or past its GOAWAY): it was not
        processed there (RFC 9113 8.7), so it is sent again, once, on another endpoint when
        the balancer has one, if nothing of it is gone: no answer yet, and no request DATA
        sent on (what was sent was acknowledged to the client, so it cannot be sent again)."""
        if self.retried or self.ended or self.sent_up or self.down.closed or self.down_end_sent:
            return False
        self.retried = True
        old = self.up
        if old is not None:
            old.streams.pop(self.up_sid, None)
        self.up, self.up_sid, self.up_end_sent = None, 0, False
        if self.pick is not None:
            self.pick.cancel()  # not processed: says nothing about that endpoint
        addr = self.down.repick(self)
        if old is not None:
            old.stream_finished()
        self.down.pool.open(self, addr)
        return True

    def _route_retry(self, ending: str) -> bool:
        """Reset or dropped before any answer: the route's retry, if it retries a 502 (gRPC:
        UNAVAILABLE) and may (`routing.route_retry`: all of the request sent and kept)."""
        if self.ended or self.routed is None:
            return False
        return routing.route_retry(self, 502, GRPC_UNAVAILABLE, ending=ending)

    def deny(self, reason: str, status: int = 403, grpc: int = GRPC_PERMISSION_DENIED) -> None:
        """Inbound policy refused the request: 403 (gRPC: PERMISSION_DENIED; or another
        answer, such as 404 / NOT_FOUND for a request no route matches), never sent on."""
        if self.grpc:
            self.grpc_own(grpc)
        else:
            self.refused(status, self.down.side.clock())
        self._answer(error_headers(self.grpc, status, reason, grpc), reason)

    def _answer(self, headers: list[tuple[bytes, bytes]], reason: str, body: bool = True) -> None:
        """Send the proxy's own response down (trailers-only for gRPC) and end the exchange."""
        self.up_end_sent = True
        down = self.down
        if down.closed or self.down_end_sent:
            self.finish()
            return
        self.down_end_sent = True
        if self.grpc or not body:
            down.conn.send_headers(self.down_sid, headers, end_stream=True)
        else:
            down.conn.send_headers(self.down_sid, headers)
            down.conn.send_data(self.down_sid, reason.encode("ascii", "replace") + b"\n",
                                end_stream=True)  # fmt: skip
        down.flusher.mark(down)
        self._response_done()

    def fail(self, reason: str) -> None:
        """Answer the client ourselves: the endpoint could not be reached or vanished."""
        if self.finished:
            return
        self._failed(200 if self.grpc else 502, GRPC_UNAVAILABLE)
        self._answer(error_headers(self.grpc, 502, reason), reason)

    def timed_out(self, reason: str = "stream timed out", endpoint_failed: bool = True) -> None:
        """No frame either way for `stream_idle_s` (a stream that never ends, a reader holding
        its window at zero): 504 (gRPC: DEADLINE_EXCEEDED) if the endpoint has not answered,
        else RST_STREAM CANCEL both ways; either way what it buffered is let go. A route's
        request or attempt deadline (`h2.routing`) ends the same way, except that the pick is
        cancelled (`endpoint_failed` False): a slow answer does not eject the endpoint."""
        if self.finished:
            return
        up = self.up
        if up is not None and not up.closed:  # (the codec skips a stream already closed)
            self._drop(self.to_down, up, self.up_sid)
            up.conn.reset_stream(self.up_sid, ErrorCodes.CANCEL)
            up.flusher.mark(up)
        if not self.ended:
            if not endpoint_failed and self.pick is not None:
                self.pick.cancel()  # a route's deadline says nothing about the endpoint
                self.pick = None
            self._failed(200 if self.grpc else 504, GRPC_DEADLINE_EXCEEDED)
            self._answer(error_headers(self.grpc, 504, reason, GRPC_DEADLINE_EXCEEDED), reason)
            return
        down = self.down
        if not down.closed and not self.down_end_sent:
            down.conn.reset_stream(self.down_sid, ErrorCodes.CANCEL)
            down.flusher.mark(down)
        self.reset_by_client(ErrorCodes.CANCEL)

    # -- bookkeeping -----------------------------------------------------------------------
    @staticmethod
    def _drop(queue: deque[list[object]], source: H2Peer, sid: int) -> None:
        """Forget queued DATA, acknowledging it so the source's connection window recovers."""
        if not queue:
            return
        flow = sum(int(item[1]) for item in queue)  # type: ignore[call-overload]
        queue.clear()
        if flow and not source.closed:
            source.conn.acknowledge_received_data(flow, sid)
            source.flusher.mark(source)

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self.timer is not None or self.try_timer is not None or self.hold is not None:
            routing.stop_timers(self)
        if not self.ended or (self.grpc and not self.counted):
            self._abandoned()
        down, up = self.down, self.up
        if self.to_up:
            self._drop(self.to_up, down, self.down_sid)  # whatever was still queued either way
        down.streams.pop(self.down_sid, None)
        if not self.req_ended and not down.closed:  # answered before the upload ended: the
            down.conn.reset_stream(self.down_sid, ErrorCodes.NO_ERROR)  # rest is not wanted
            down.flusher.mark(down)
        if up is not None:
            if self.to_down:
                self._drop(self.to_down, up, self.up_sid)
            up.streams.pop(self.up_sid, None)
            if not up.streams:
                up.stream_finished()
        if not down.streams:
            down.stream_finished()


def _pump(queue: deque[list[object]], to: H2Peer, sid: int, end: bool) -> tuple[int, bool]:
    """Send queued DATA on stream `sid` of `to` while its window allows, the last frame with
    END_STREAM if `end`; returns the flow-controlled bytes now sent (to acknowledge to where
    they came from) and whether END_STREAM went."""
    conn = to.conn
    acked = 0
    window = conn.send_window(sid)
    frame = conn.max_outbound_frame_size
    ended = False
    while queue:
        item = queue[0]
        data: bytes = item[0]  # type: ignore[assignment]
        if data:
            if window <= 0:
                break
            n = min(len(data), window, frame)
            if n < len(data):
                conn.send_data(sid, data[:n])
                item[0] = data[n:]
                window -= n
                continue
            last = end and len(queue) == 1
            conn.send_data(sid, data, end_stream=last)
            ended = last
            window -= n
        queue.popleft()
        acked += item[1]  # type: ignore[operator]
    to.flusher.mark(to)
    return acked, ended
