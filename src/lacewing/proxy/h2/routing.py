"""The route layer's steps inside an HTTP/2 exchange (functions of an `H2Exchange`).

Only streams to a destination that has routes (HTTPRoute or GRPCRoute) come here; the server
asked `side.route_pick` for the stream's rule, backend and endpoint, as HTTP/1 does.

    before sending  `arm`: a 404 / 503 / injected abort is the proxy's own answer (gRPC: a
                    trailers-only grpc-status as gRPC maps HTTP codes: 404 UNIMPLEMENTED,
                    503 UNAVAILABLE), a RequestRedirect is answered with its Location
                    (plain HTTP/2 only); otherwise the request header modifier rewrites the
                    header list, the request and per-attempt timers start, a rule that
                    retries starts keeping the request DATA (`replay`, up to `MAX_REPLAY`
                    bytes: a bigger request is never retried), an injected delay holds the
                    stream before it opens
    timer fires     `timed_out`: the upstream stream is reset (CANCEL: the endpoint sees the
                    call cancelled) and the client gets 504, gRPC DEADLINE_EXCEEDED (4)
    attempt expires `_attempt_expired`: retried when the policy retries 504 / deadline-
                    exceeded and may, else answered as above
    no answer       the endpoint reset the stream (after REFUSED_STREAM's own retry, below)
                    or lost the connection before a response head: `route_retry` as for a
                    502 (gRPC: UNAVAILABLE), the answer the proxy would give, so a route
                    retrying 5xx / gateway-error / unavailable sends it again
    response head   `route_retry`: an HTTP status in the policy, or for gRPC a trailers-only
                    answer whose grpc-status is in it (`retry.lacewing.io/grpc`), with the
                    whole request sent and kept and nothing answered to the client: the
                    attempt's stream is reset, the same backend gives a new endpoint and the
                    kept DATA (and trailers) go out again; attempts and the route's budget
                    are `proxy.routes.steps.grant_retry`'s; otherwise the response header
                    modifier applies and the answer goes down

A gRPC answer that has started (its HEADERS went down) is never retried: its messages may
already be with the client. The request timeout covers the exchange until the response
head, as HTTP/1's does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from lacewing.proxy.h2.frames import ErrorCodes
from lacewing.proxy.h2.headers import GRPC_DEADLINE_EXCEEDED, error_headers, pseudo
from lacewing.proxy.routes import MAX_REPLAY
from lacewing.proxy.routes.headers import location, modify_fields
from lacewing.proxy.routes.steps import attempt_timeout, grant_retry, roll_fault

if TYPE_CHECKING:
    from lacewing.proxy.h2.stream import H2Exchange

__all__ = [
    "answer_own",
    "arm",
    "grpc_code_of",
    "keep",
    "response_fields",
    "route_retry",
    "stop_timers",
]

# gRPC's mapping of HTTP statuses to codes (doc/http-grpc-status-mapping.md)
_GRPC_OF_HTTP = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}


def grpc_code_of(status: int) -> int:
    return _GRPC_OF_HTTP.get(status, 2)  # UNKNOWN


def arm(ex: H2Exchange) -> bool:
    """The route's steps before the stream opens; False when it does not open now."""
    routed = ex.routed
    assert routed is not None
    if routed.error is not None:
        status, reason = routed.error
        answer_own(ex, status, reason)
        return False
    plan = routed.plan
    assert plan is not None
    rule = plan.rule
    router = ex.down.side.router
    delay = 0.0
    if rule.fault is not None and router is not None:
        abort, delay = roll_fault(router.rng, rule)
        if abort is not None:
            answer_own(ex, abort, "fault injected")
            return False
    if rule.redirect is not None:
        path = (pseudo(ex.headers, b":path") or b"/").decode("latin-1")
        where = location(rule.redirect, ex.authority, path, plan.found.match.path)
        ex.refused(rule.redirect.status, ex.down.side.clock())
        ex._answer([(b":status", b"%d" % rule.redirect.status),
                      (b"location", where.encode("latin-1", "replace")),
                      (b"content-length", b"0")], "redirect", body=False)  # fmt: skip
        return False
    if rule.request_headers is not None:
        ex.headers = modify_fields(list(ex.headers), rule.request_headers)
    loop = asyncio.get_running_loop()
    if rule.timeout is not None:
        ex.timer = loop.call_later(rule.timeout, _deadline, ex)
    per_try = attempt_timeout(rule)
    if per_try:
        ex.try_timeout = per_try
        ex.try_timer = loop.call_later(per_try, _attempt_expired, ex, 0)
    if rule.retry is not None:
        ex.replay = []
    if delay:
        ex.hold = loop.call_later(delay, _delayed, ex)
        return False
    return True


def _delayed(ex: H2Exchange) -> None:
    ex.hold = None
    if not ex.finished and ex.pick is not None:
        ex.down.pool.open(ex, ex.pick.endpoint.addr)
        ex.down.flusher.flush()


def keep(ex: H2Exchange, data: bytes) -> None:
    """Keep request DATA for a retry while it fits the replay buffer."""
    replay = ex.replay
    if replay is not None:
        ex.replay_size += len(data)
        if ex.replay_size > MAX_REPLAY:
            ex.replay = None  # too big to replay: this request will not be retried
        else:
            replay.append(data)


def answer_own(ex: H2Exchange, status: int, reason: str) -> None:
    """The proxy answers a routed request itself (no route, no endpoints, a fault)."""
    if ex.grpc:
        code = GRPC_DEADLINE_EXCEEDED if status == 504 else grpc_code_of(status)
        ex.grpc_own(code)
        ex._answer(error_headers(True, status, reason, code), reason)
        return
    ex.refused(status, ex.down.side.clock())
    ex._answer(error_headers(False, status, reason), reason)


def stop_timers(ex: H2Exchange) -> None:
    for name in ("timer", "try_timer", "hold"):
        handle = getattr(ex, name)
        if handle is not None:
            handle.cancel()
            setattr(ex, name, None)


def _deadline(ex: H2Exchange) -> None:
    ex.timer = None
    if not ex.finished and not ex.ended:
        ex.timed_out("request timed out", endpoint_failed=False)
        ex.down.flusher.flush()  # (a timer: no read or write will flush for us)


def _attempt_expired(ex: H2Exchange, attempt: int) -> None:
    ex.try_timer = None
    if ex.finished or ex.ended or ex.attempts != attempt:
        return
    if not route_retry(ex, 504, GRPC_DEADLINE_EXCEEDED):
        ex.timed_out("backend request timed out", endpoint_failed=False)
    ex.down.flusher.flush()


def route_retry(ex: H2Exchange, status: int, code: int | None, *, ending: str = "answered"
                ) -> bool:  # fmt: skip
    """Send the request again if the route retries this answer and may; True if sent.
    `ending` "failed": the endpoint reset or dropped the stream before any answer (asked as
    the 502 / UNAVAILABLE the proxy would answer; the attempt's pick ends as a failure);
    "refused": REFUSED_STREAM (the same, but the pick is cancelled: not processed there)."""
    routed = ex.routed
    plan = routed.plan if routed is not None else None
    policy = plan.rule.retry if plan is not None else None
    if routed is None or plan is None or policy is None:
        return False
    if (code not in policy.grpc_codes) if ex.grpc else (status not in policy.statuses):
        return False
    replay = ex.replay
    if replay is None or not ex.req_ended or not ex.up_end_sent:
        return False
    if ex.finished or ex.down_end_sent or ex.down.closed:
        return False
    if not grant_retry(plan, ex.attempts):
        return False
    router = ex.down.side.router
    assert router is not None and ex.logical is not None
    if ending == "failed" and ex.pick is not None:  # its pick fails; the retry avoids it
        again = router.retry_elsewhere(routed, ex.logical, ex.pick)
    else:
        again = router.retry(routed, ex.logical)
    if again.pick is None:
        return False
    now = ex.down.side.clock()
    old = ex.up
    if old is not None:
        ex._drop(ex.to_down, old, ex.up_sid)
        if not old.closed:
            old.conn.reset_stream(ex.up_sid, ErrorCodes.CANCEL)
            old.flusher.mark(old)
        old.streams.pop(ex.up_sid, None)
    if ending != "answered":
        if ex.pick is not None and ending == "refused":
            ex.pick.cancel()
        elif ex.pick is not None:
            ex.pick.fail()  # the endpoint failed before answering (done already: no-op)
    elif ex.grpc:
        ex.end_grpc_pick(code, now - ex.sent_at)
    else:
        ex.end_pick(status, now - ex.sent_at)
    ex.pick, ex.routed = again.pick, again
    ex.attempts += 1
    plan.stats.retries += 1
    ex.up, ex.up_sid, ex.up_end_sent, ex.sent_up = None, 0, False, False
    ex.resp_ended, ex.resp_trailers = False, None
    ex.to_up = deque([data, 0] for data in replay)  # acknowledged the first time
    if ex.try_timeout:
        if ex.try_timer is not None:
            ex.try_timer.cancel()
        ex.try_timer = asyncio.get_running_loop().call_later(
            ex.try_timeout, _attempt_expired, ex, ex.attempts
        )
    ex.down.retarget(ex, again.pick)
    if old is not None:
        old.stream_finished()
    ex.down.pool.open(ex, again.pick.endpoint.addr)
    return True


def response_fields(
    ex: H2Exchange, headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The response head as it goes down: the rule's response header modifier applied."""
    stop_timers(ex)
    rule = ex.routed.rule if ex.routed is not None else None
    if rule is None or rule.response_headers is None:
        return headers
    return modify_fields(headers, rule.response_headers)
