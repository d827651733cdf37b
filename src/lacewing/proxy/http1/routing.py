"""The route layer's steps inside an HTTP/1 connection (mixed into `Http1Server`).

Only requests to a destination that has routes come here; the others never see this code.

    head complete   `_route`: the router picks rule, backend and endpoint (`proxy.routes`);
                    `_arm`: a 404 / 503 / redirect / injected fault becomes the request's
                    own answer (an injected delay holds the request first), the
                    request timeout is armed, a request with a retry policy starts keeping
                    what goes upstream (`sent`, up to `MAX_REPLAY` bytes: a bigger request
                    is never retried) and the request header modifier rewrites the head
    timeout fires   `_timed_out`: the upstream connection is aborted (the endpoint sees the
                    request cancelled) or the connect abandoned, and the client gets 504;
                    a request still queued behind others is answered 504 in its turn;
                    once the response head went down, the client connection is cut
    response head   `_retry`: a status the policy retries, with attempts and budget left and
                    the whole request kept: the connection carrying that response is
                    aborted (its body is not wanted), the same backend gives a new endpoint
                    and the kept bytes are sent again; otherwise the response header
                    modifier applies and the response goes to the client
    no answer       `_retry_failed`: the connect was refused (502) or timed out (504), or
                    the endpoint reset or closed the connection or sent garbage before a
                    response head (502): asked as that status, under the same conditions;
                    the attempt's pick ends as a failure (its endpoint is ejected), not as
                    an answer, and what had not gone up yet goes with the kept bytes

The proxy's own answers to a routed request (404, 503, 504, a redirect, an injected abort)
keep the client's connection open when the request had no body or its body had all arrived
(a timeout after the upload, `_answer_own`), as an application's answer would. One decided
at the head while a small body (Content-Length up to `MAX_REPLAY`) is still to come waits
for it, dropping it, and then answers (`_drain_first`); otherwise (a chunked or bigger
body, `Expect: 100-continue`, an upgrade) the connection closes after the answer, as after
every other error the proxy answers.

The request timeout covers the whole exchange: a response body still streaming when it
expires is cut (the upstream connection aborted, the client's closed, so the truncated
response cannot look complete; its status was already counted). An upgrade's tunnel has no
deadline once the endpoint answers 101. The backend request timeout
(`timeouts.backendRequest`, else the retry timeout annotation) covers each attempt until its
response head: an attempt that expires is cut and retried like a 504, if the route retries
504 and budget and attempts allow, else answered 504. A retry is never
sent for a request whose body is still arriving, an upgrade, HEAD
or `Expect: 100-continue`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lacewing.proxy.http1.exchange import Request
from lacewing.proxy.routes import MAX_REPLAY, Routed
from lacewing.proxy.routes.headers import location, modify_head, own_response, redirect_response
from lacewing.proxy.routes.steps import attempt_timeout, grant_retry, roll_fault
from lacewing.proxy.targets import Empty, Endpoint, Logical, Pick

if TYPE_CHECKING:
    from lacewing.proxy.config import Addr
    from lacewing.proxy.metrics import RouteStats
    from lacewing.proxy.routes.router import RouteTarget
    from lacewing.proxy.side import Side

__all__ = ["RouteSteps"]


class RouteSteps:
    _route_target: RouteTarget | None = None  # the route layer of `logical`, once asked
    side: Side
    logical: Logical
    active: Request | None
    closed: bool
    target: Endpoint
    endpoint: Addr
    _idle: Any  # the pool's bucket of the current endpoint
    _last_route: RouteStats | None
    _headers: list[tuple[bytes, bytes]]
    _clock: Callable[[], float]
    _connect_task: asyncio.Task[None] | None

    def _answer_error(
        self, req: Request, status: int, reason: str, *, endpoint_failed: bool = False
    ) -> None:
        raise NotImplementedError

    def _start(self, req: Request) -> None:
        raise NotImplementedError

    CONNECTING: int
    UPSTREAM_FULL: int

    def pause(self, reason: int) -> None:
        raise NotImplementedError

    def resume(self, reason: int) -> None:
        raise NotImplementedError

    queue: deque[Request]
    closing: bool
    _client_eof: bool
    _paused: int
    _cur: Request | None
    _dout: list[bytes]
    PIPELINE: int

    def flush_down(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def _answer_own(self, req: Request, status: int, reason: str, *, wait_body: bool = True
                    ) -> bool:  # fmt: skip
        """Answer a routed request with the proxy's own response on a connection that stays
        open (a body-less request, or one whose body has all been read: nothing of it is left
        to arrive after the answer): 404, 503, 504, redirects, injected aborts. False when it
        cannot (the caller closes instead). A timeout does not `wait_body`: its 504 is due now."""
        if req.http10 or not req.keep_alive or req.status:
            return False
        if req.replay is None and (req.upgrade or not req.complete):
            return wait_body and self._drain_first(req, status, reason)
        for timer in (req.timer, req.try_timer):
            if timer is not None:
                timer.cancel()
        req.timer = req.try_timer = None
        req.refused(status, self._clock())
        self._dout.append(req.canned or own_response(status, reason))
        self.flush_down()
        self.active = None
        if self._client_eof or self.closing:
            self.close()
        elif self.queue:
            self._start(self.queue.popleft())
        elif self._paused:
            self.resume(self.PIPELINE)
        return True

    def _drain_first(self, req: Request, status: int, reason: str) -> bool:
        """Answer once the body has arrived, dropping it, when it is small and known:
        the request being parsed now, with a Content-Length up to `MAX_REPLAY`, no upgrade,
        no `Expect: 100-continue` (that client waits for us before sending it)."""
        if req is not self._cur or req.chunked or req.upgrade or req.expect_continue:
            return False
        length = (self._header("content-length") or "").strip()
        if not length.isdigit() or int(length) > MAX_REPLAY:
            return False
        for timer in (req.timer, req.try_timer):
            if timer is not None:
                timer.cancel()
        req.timer = req.try_timer = None
        req.drain, req.buf = (status, reason), []
        if self._paused:
            self.resume(self.PIPELINE)
        return True

    def _header(self, name: str) -> str | None:
        """The first value of header `name` (lower case) of the request being parsed."""
        wanted = name.encode("latin-1")
        for key, value in self._headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    def _retarget(self, target: Endpoint) -> None:
        if target is not self.target:
            self.target = target
            if target.addr != self.endpoint:
                self.endpoint, self._idle = target.addr, self.side.pool.bucket(target.addr)
            self._last_route = None  # its dst_* labels may differ

    def _route(self, method: bytes, url: bytes) -> tuple[Pick | None, Routed | None]:
        held = self._route_target
        if held is None:
            side = self.side
            if side.router is None:
                static = side.pick(self.logical)
                self._retarget(static.endpoint)
                if static.ticket is None and isinstance(static, Empty):
                    return static, Routed(None, None, None, (503, static.reason))
                return static, None
            held = self._route_target = side.router.target(self.logical)  # (per connection)
        pick, routed = held.route_pick(method.decode("latin-1"), url.decode("latin-1"),
                                       self._header)  # fmt: skip
        if pick is not None and pick.endpoint is not self.target:
            self._retarget(pick.endpoint)
        return pick, routed

    def _arm(self, req: Request, routed: Routed, host: bytes, url: bytes) -> None:
        req.routed = routed
        if routed.error is not None:
            req.error = routed.error
            return
        plan = routed.plan
        assert plan is not None
        if plan.simple:  # no fault, redirect, timeout or retry: nothing to arm
            return
        rule = plan.rule
        router = self.side.router
        if rule.fault is not None and router is not None:
            abort, delay = roll_fault(router.rng, rule)
            if abort is not None:
                req.error = (abort, "fault injected")
                return
            if delay:
                req.delay = delay
        if rule.redirect is not None:
            where = location(rule.redirect, host.decode("latin-1"), url.decode("latin-1"),
                             plan.found.match.path)  # fmt: skip
            req.error = (rule.redirect.status, "redirect")
            req.canned = redirect_response(rule.redirect.status, where)
            return
        loop = asyncio.get_running_loop()
        if rule.timeout is not None:
            req.timer = loop.call_later(rule.timeout, self._timed_out, req)
        per_try = attempt_timeout(rule)
        if per_try is not None:
            req.try_timeout = per_try
            req.try_timer = loop.call_later(per_try, self._try_timed_out, req, 0)
        if rule.retry is not None and not req.upgrade:
            req.sent = []

    def _delay(self, req: Request) -> None:
        """Hold `req` for its injected delay (reading paused), then start it."""
        delay, req.delay = req.delay, 0.0
        self.pause(self.CONNECTING)
        asyncio.get_running_loop().call_later(delay, self._delayed, req)

    def _delayed(self, req: Request) -> None:
        if self.closed or req is not self.active or req.ended:
            return  # the client left, or the request timed out meanwhile
        self.resume(self.CONNECTING)
        self._start(req)

    def _rewrite_head(self, req: Request, head: bytes) -> bytes:
        plan = req.routed.plan if req.routed is not None else None
        if plan is None or plan.simple or plan.rule.request_headers is None:
            return head
        return modify_head(head, plan.rule.request_headers)

    def _timed_out(self, req: Request) -> None:
        req.timer = None
        if self.closed:
            return
        if req.ended:  # answered: cut a response body still streaming
            if req is self.active and req.upstream is not None:
                self._cut_attempt(req)
                self.flush_down()
                self.abort()  # a truncated response must not look complete
            return
        if req is not self.active:  # queued behind others: answered in its turn
            req.error = (504, "request timed out")
            return
        self._cut_attempt(req)
        if not self._answer_own(req, 504, "request timed out", wait_body=False):
            self._answer_error(req, 504, "request timed out")

    def _try_timed_out(self, req: Request, attempt: int) -> None:
        """One attempt took longer than the backend request timeout: retry it if the route
        retries 504 and may, else answer 504."""
        req.try_timer = None
        if req.ended or self.closed or req is not self.active or req.attempts != attempt:
            return
        routed = req.routed
        if routed is not None and self._retry(req, routed, 504):
            return
        self._cut_attempt(req)
        if not self._answer_own(req, 504, "backend request timed out", wait_body=False):
            self._answer_error(req, 504, "backend request timed out")

    def _cut_attempt(self, req: Request) -> None:
        """Abandon the attempt in flight: the endpoint sees its connection closed."""
        up = req.upstream
        if up is not None:
            req.upstream, up.server = None, None
            up.abort()
        elif self._connect_task is not None:
            self._connect_task.cancel()
            self._connect_task = None

    def _response_head(self, req: Request, status: int, head: bytes) -> bytes | None:
        """The head to send down, None when the request is being retried instead."""
        routed = req.routed
        assert routed is not None
        plan = routed.plan
        if plan is not None and plan.simple:  # no retry, timer or header modifier
            return head
        if self._retry(req, routed, status):
            return None
        if req.try_timer is not None:  # the attempt has answered
            req.try_timer.cancel()
            req.try_timer = None
        if req.timer is not None and (req.upgrade or status < 200):  # a tunnel: no deadline
            req.timer.cancel()
            req.timer = None
        rule = routed.rule
        if rule is not None and rule.response_headers is not None and status >= 200:
            return modify_head(head, rule.response_headers)
        return head

    def _retry_failed(self, req: Request, status: int) -> bool:
        """The attempt got no response head (connect refused or timed out, the endpoint
        closed, reset or spoke nonsense first): retried as the `status` (502 / 504) the
        proxy would answer, if the route retries that and may; the endpoint's pick ends as
        a failure. Whatever of the request had not gone up yet (`buf`) goes too."""
        routed = req.routed
        if routed is None or routed.simple or req.status or self.closed:
            return False
        return self._retry(req, routed, status, failed=True)

    def _retry(self, req: Request, routed: Routed, status: int, *, failed: bool = False
               ) -> bool:  # fmt: skip
        plan = routed.plan
        policy = plan.rule.retry if plan is not None else None
        if plan is None or policy is None or status not in policy.statuses:
            return False
        sent = req.sent
        if sent is None or not req.complete or req.is_head or req.expect_continue:
            return False
        unsent = req.buf
        if unsent and req.sent_size + sum(len(b) for b in unsent) > MAX_REPLAY:
            return False  # (not gone up yet, but more than a retry may keep)
        if not grant_retry(plan, req.attempts):
            return False
        router = self.side.router
        assert router is not None
        if failed and req.pick is not None:
            # no answer from that endpoint: its pick fails (ending it again later, if no
            # retry is sent, does nothing: a pick ends once), the retry avoids it
            again = router.retry_elsewhere(routed, self.logical, req.pick)
        else:
            again = router.retry(routed, self.logical)
        if again.pick is None:
            return False
        up = req.upstream
        if up is not None and up.paused_writing:
            self.resume(self.UPSTREAM_FULL)  # (that connection's full buffer no longer counts)
        self._cut_attempt(req)  # the rest of this response is not wanted
        if not failed:
            req.end_pick(status, self._clock() - req.start)
        req.pick, req.routed = again.pick, again
        req.attempts += 1
        plan.stats.retries += 1
        if req.try_timeout:
            if req.try_timer is not None:
                req.try_timer.cancel()
            req.try_timer = asyncio.get_running_loop().call_later(
                req.try_timeout, self._try_timed_out, req, req.attempts
            )
        self._retarget(again.pick.endpoint)
        req.buf, req.sent, req.sent_size = sent + unsent if unsent else sent, [], 0
        req.reused = False
        self.resume(self.CONNECTING)  # (a failed connect held reading; `_start` may again)
        self._start(req)
        return True

    @staticmethod
    def _keep_sent(req: Request, data: bytes) -> None:
        sent = req.sent
        if sent is not None:
            req.sent_size += len(data)
            if req.sent_size > MAX_REPLAY:
                req.sent = None  # too big to replay: this request will not be retried
            else:
                sent.append(data)
