"""One accepted HTTP/1 connection: requests in, responses out, in order.

    client --bytes--> Http1Server (httptools request parser) --head+body--> UpstreamConn
    client <--batch-- Http1Server._dout <--head+body-- UpstreamConn (response parser)

Requests are answered one at a time. The one being answered is `active`; requests pipelined
behind it are parsed from the bytes already read and wait in `queue` (reading pauses as soon as
one is queued, so at most one read's worth waits). Each request's outgoing bytes go into its
`buf`, flushed to its upstream connection once per read; until that connection exists (pool
miss -> a named connect task), reading pauses. A request head that arrived whole in one read
and carries no hop-by-hop header is forwarded as the very bytes the client sent.

Reading from the client pauses for any of four reasons, kept as bits so one cannot undo
another: CONNECTING (no upstream yet), PIPELINE (a request is queued behind the active one),
UPSTREAM_FULL (the endpoint reads our upload slower than the client sends it) and UPGRADE (the
request asked to switch protocols). The other direction: when the client reads slowly,
`pause_writing` pauses reading from the endpoint.

Each request takes its endpoint from `side.pick(logical)` when its head is complete (re-picked
per request when discovery balances, one cached pick otherwise) and becomes an `Exchange`
(`proxy.exchange`, shared with HTTP/2), told once how it ended: `answered` with the response
head, `failed` when the endpoint cannot be reached or dies before answering, `refused` when
the proxy answers for other reasons, `abandoned` when the client goes away first or the
connection is aborted at shutdown; the exchange ends the pick and counts the response.

With routes for the destination (`side.router`), the route layer's steps (`http1.routing`)
choose the backend, arm the request timeout, keep a retryable request's bytes, rewrite heads
and retry a response the route retries.

Errors answer with the proxy's own response and close: malformed -> 400, a head that trickles
in longer than the header read timeout -> 408, head larger than the limit -> 431, refused ->
502, connect timeout -> 504, endpoint vanished before answering -> 502 (except that a body-less
request on a pooled connection the endpoint had just closed is sent once more, on a new one;
a request whose connection could not be made, when requests are balanced, goes once to
the balancer's next pick instead: nothing of it was sent; and a routed request whose route
retries 502 / 504 is retried instead of answered, `http1.routing._retry_failed`).
"""

from __future__ import annotations

import asyncio
from collections import deque

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from lacewing.proxy.config import Addr
from lacewing.proxy.http1.exchange import Request
from lacewing.proxy.http1.head import (
    CONNECTION,
    CONTENT_LENGTH,
    EXPECT,
    HOP,
    HOST,
    KIND_CACHE,
    TRANSFER_ENCODING,
    UPGRADE,
    error_response,
    header_kind,
    rebuild,
)
from lacewing.proxy.http1.routing import RouteSteps
from lacewing.proxy.http1.upstream import UpstreamConn
from lacewing.proxy.metrics import RouteStats, TcpStats
from lacewing.proxy.policy.gate import NOT_FOUND_HTTP_STATUS, counter
from lacewing.proxy.routes import Routed
from lacewing.proxy.side import Side
from lacewing.proxy.targets import HTTP1, Endpoint, Logical, Pick
from lacewing.proxy.tcp import TunnelConn, TunnelEnd, join
from lacewing.proxy.transport import ConnectError, ConnectTimeout

__all__ = ["Http1Server", "Request"]


class _HeadTooLarge(Exception):
    pass


class _AfterLast(Exception):
    """Bytes of another request after one that ends the connection (HTTP/1.0 without
    keep-alive, `Connection: close`): RFC 9112 9.6 says not to process them, so they are
    dropped, never sent to an endpoint whose connection is closing for the same reason."""


# A parser and its protocol point at each other; swapping in this callback-less parser when a
# connection ends breaks the cycle, so the connection is freed at once, not by the cyclic GC.
_DETACHED = HttpRequestParser(object())
_kind_get = KIND_CACHE.get  # one lookup per header (see head.py)


class Http1Server(RouteSteps, asyncio.Protocol):
    CONNECTING = 1
    PIPELINE = 2
    UPSTREAM_FULL = 4
    UPGRADE = 8

    def __init__(self, side: Side, dst: Addr, stats: TcpStats) -> None:
        self.side = side
        self.logical = Logical(dst, HTTP1)
        # With discovery the endpoint is re-picked per request; otherwise one pick serves all.
        # (a pick counts a request in flight: with discovery none is taken before a request)
        repick = side.discovery is not None
        self._pick: Pick | None = None if repick else side.pick(self.logical)
        self.target: Endpoint = Endpoint(dst) if self._pick is None else self._pick.endpoint
        self.endpoint = self.target.addr
        self._idle = side.pool.bucket(self.endpoint)
        self.dst = dst
        self._gate = side.gate if side.direction == "inbound" else None
        self._client: tuple[str | None, str] = (None, "")
        self.target_addr = str(dst)
        self.src = stats
        self.opened_at = stats.clock()
        self.max_head = side.config.max_header_bytes
        self._clock = side.clock
        self._pool_cap = side.pool.cap
        self.parser = HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.active: Request | None = None
        self.queue: deque[Request] = deque()
        self.closed = False
        self.closing = False
        self.touched = True
        self._dout: list[bytes] = []
        self._paused = 0
        self._down_paused = False
        self._client_eof = False
        self._upgrading = False
        self._connect_task: asyncio.Task[None] | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        # the request being parsed
        self._cur: Request | None = None
        self._in_message = False
        self._fresh = True
        self._chunk = b""
        self._begin_chunk: bytes | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._conn_values: list[bytes] | None = None
        self._hop = False
        self._host = b""
        self._chunked = False
        self._expect = False
        self._has_body = False
        self._head_raw = 0
        self._broken = False
        self._too_large = False
        self._after_last = False
        self._last_host = b"\0"
        self._last_route: RouteStats | None = None

    def adopt(self, transport: asyncio.Transport, early: bytes) -> None:
        transport.set_protocol(self)
        self.transport = transport
        if self._gate is not None:
            self._client = self.side.client_of(transport)
        if early:
            self.data_received(early)

    # -- client socket events -----------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.src.read_bytes += len(data)
        self.touched = True
        if self._broken:
            return
        if self._upgrading:
            active = self.active
            if active is not None:
                active.buf.append(data)
                self._flush_up(active)
            return
        if self._after_last:
            return
        self._chunk = data
        if not self._in_message:
            self._fresh = True
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as exc:
            self._upgrading = True
            self.pause(self.UPGRADE)
            rest = data[exc.args[0] :]
            if self.active is not None and rest:
                self.active.buf.append(rest)
        except HttpParserError:
            if self._after_last:
                return
            status, reason = (
                (431, "request headers too large")
                if self._too_large
                else (400, "malformed request")
            )
            self._reject(status, reason)
            return
        else:
            if self._cur is None and (self._in_message or self.active is None):
                # a request head is arriving in pieces (or has not started to)
                if self._in_message:
                    self._head_raw += len(data)
                    if self._head_raw > self.max_head:
                        self._reject(431, "request headers too large")
                        return
                if self._head_timer is None:
                    self._head_timer = asyncio.get_running_loop().call_later(
                        self.side.config.header_read_timeout, self._head_timed_out
                    )
        active = self.active
        if active is not None and active.buf and active.upstream is not None:
            self._flush_up(active)

    def _flush_up(self, req: Request) -> None:
        up = req.upstream
        if up is None or up.transport is None or up.closed:
            return
        data = b"".join(req.buf) if len(req.buf) > 1 else req.buf[0]
        req.buf.clear()
        if req.sent is not None:  # kept for a retry
            self._keep_sent(req, data)
        up.stats.write_bytes += len(data)
        up.transport.write(data)

    def eof_received(self) -> bool:
        self._client_eof = True
        return self.active is not None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.src.close(exc, self.opened_at)
        self.side.conns.pop(self.transport, None)  # type: ignore[arg-type]
        if self._connect_task is not None:
            self._connect_task.cancel()
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        active = self.active
        if active is not None and active.upstream is not None:
            up = active.upstream
            up.server = None
            up.abort()
        for req in (active, *self.queue):
            if req is not None:
                if req.timer is not None:
                    req.timer.cancel()
                req.abandoned()  # no-op for the pick if it already ended
        self.active = None
        self.queue.clear()
        self.parser = _DETACHED

    def pause_writing(self) -> None:
        self._down_paused = True
        if self.active is not None and self.active.upstream is not None:
            tr = self.active.upstream.transport
            if tr is not None:
                tr.pause_reading()

    def resume_writing(self) -> None:
        self._down_paused = False
        if self.active is not None and self.active.upstream is not None:
            tr = self.active.upstream.transport
            if tr is not None:
                tr.resume_reading()

    def pause(self, reason: int) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self._paused |= reason

    def resume(self, reason: int) -> None:
        was = self._paused
        self._paused &= ~reason
        if was and not self._paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # -- shutdown and idleness (side.Conn) ---------------------------------------------
    def drain(self) -> None:
        self.closing = True
        if self.active is None and not self._in_message:
            self.close()

    def sweep_idle(self) -> None:
        if not self.touched and self.active is None:
            self.close()
        self.touched = False

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    # -- httptools callbacks: the request -------------------------------------------------
    # No on_message_begin (one Python call less per request): the request line's URL is the
    # first callback of a message, and per-message state is reset when a message completes
    # (in on_message_complete itself: one Python call less again).
    def on_url(self, url: bytes) -> None:
        if self._in_message:  # the URL arrived in pieces
            self._url += url
            return
        if self._after_last:
            raise _AfterLast
        self._in_message = True
        self._begin_chunk = self._chunk if self._fresh else None
        self._fresh = False
        self._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        kind = _kind_get(name)
        if kind is None:
            kind = header_kind(name)
        if kind:
            if kind == HOST:
                self._host = value
            elif kind == TRANSFER_ENCODING:
                self._chunked = value.rstrip().lower().endswith(b"chunked")
            elif kind == CONNECTION:
                # `keep-alive` alone names no header to drop (Keep-Alive always goes)
                if value != b"keep-alive" and value.strip().lower() != b"keep-alive":
                    self._hop = True
                    if self._conn_values is None:
                        self._conn_values = []
                    self._conn_values.append(value)
            elif kind == CONTENT_LENGTH:
                self._has_body = value.strip() != b"0"
            elif kind == EXPECT:
                self._expect = value.strip().lower() == b"100-continue"
            elif kind in (HOP, UPGRADE):
                self._hop = True

    def on_headers_complete(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        parser = self.parser
        host = self._host
        pick = self._pick
        routed: Routed | None = None
        if pick is None:  # re-picked per request (through the route layer when it has routes)
            pick, routed = self._route(parser.get_method(), self._url)
        route = self._last_route
        if host != self._last_host or route is None:
            side = self.side
            route = side.metrics.route(
                side.direction, host.decode("latin-1"), self.target_addr,
                side.route_labels(self.target),
            )  # fmt: skip
            self._last_host, self._last_route = host, route
        route.requests += 1
        req = Request(route, self._clock())
        req.pick = pick
        if route.tap.hub is not None:  # someone taps (proxy.tap): keep what the event shows
            req.method = parser.get_method().decode("latin-1")
            req.path = self._url.decode("latin-1")
        self._cur = req
        if self._gate is not None:
            self._authorize(req, parser.get_method())
        if not parser.should_keep_alive():
            req.keep_alive = False
        if parser.should_upgrade():
            req.upgrade = True
        if self._chunked:
            req.chunked = True
        if self._expect:
            req.expect_continue = True
        if routed is not None:
            req.routed = routed
            if not routed.simple:  # (a simple rule has no step to arm)
                self._arm(req, routed, host, self._url)
        head: bytes | None = None
        if not self._hop:
            chunk = self._begin_chunk
            # (the head may have begun in an earlier read that no callback saw: only a read
            # that starts with the method holds the whole head)
            if (
                chunk is not None
                and chunk is self._chunk
                and chunk.startswith(parser.get_method() + b" ")
            ):
                end = chunk.find(b"\r\n\r\n")
                if end >= 0:
                    if end > self.max_head:
                        self._too_large = True
                        raise _HeadTooLarge
                    # a read that is exactly one head (a body-less request) is sent as is
                    head = chunk if end + 4 == len(chunk) else chunk[: end + 4]
                    # "METHOD SP URL SP HTTP/1.x": the version digits sit at a known place
                    method = parser.get_method()
                    if head.startswith(b"1.0", len(method) + len(self._url) + 7):
                        req.http10 = True
                    if method == b"HEAD":
                        req.is_head = True
        if head is None:
            method = parser.get_method()
            version = parser.get_http_version()
            req.http10 = version == "1.0"
            req.is_head = method == b"HEAD"
            first = b"%s %s HTTP/%s" % (method, self._url, version.encode())
            # an HTTP/1.0 request the client keeps alive says so upstream too (its Connection
            # header went with the hop-by-hop ones), or the endpoint would end the connection
            head = rebuild(first, self._headers, self._conn_values or [],
                           keep_upgrade=req.upgrade, close=False,
                           keep_alive=req.http10 and req.keep_alive)  # fmt: skip
            if len(head) > self.max_head + 2:
                self._too_large = True
                raise _HeadTooLarge
        if routed is not None and not routed.simple:
            head = self._rewrite_head(req, head)
        req.buf.append(head)
        if not (self._chunked or self._has_body or req.upgrade):
            req.replay = head
        if self.active is None:
            idle = self._idle
            if idle and not (self._paused or self._down_paused or req.error or req.delay):
                # the common case, inline: a warm pooled connection; data_received flushes
                conn = idle.pop()
                if not conn.closed and not conn.paused_writing:
                    self.active = req
                    conn.server = self
                    conn.head_sent = False
                    req.upstream = conn
                    req.reused = True
                    return
                idle.append(conn)
            self._start(req)
        else:  # pipelined: stop reading until the ones ahead are answered
            self.queue.append(req)
            self.pause(self.PIPELINE)

    def on_body(self, body: bytes) -> None:
        req = self._cur
        if req is None or req.drain is not None:  # (drain: answered, its body is dropped)
            return
        if req.chunked:
            req.buf += (b"%x\r\n" % len(body), body, b"\r\n")
        else:
            req.buf.append(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        self._begin_chunk = None
        self._url = b""
        self._headers = []
        self._conn_values = None
        self._hop = self._chunked = self._expect = self._has_body = False
        self._host = b""
        self._head_raw = 0
        req = self._cur
        if req is None:
            return
        self._cur = None
        req.complete = True
        if not req.keep_alive:
            self._after_last = True
        if req.drain is not None:
            if req is self.active:
                self._answer_own(req, *req.drain)
            return
        if req.chunked:
            req.buf.append(b"0\r\n\r\n")

    # -- the exchange ------------------------------------------------------------------
    def _start(self, req: Request) -> None:
        self.active = req
        if req.error is not None:
            if req.routed is None or not self._answer_own(req, *req.error):
                self._answer_error(req, *req.error)
            return
        if req.delay:
            self._delay(req)
            return
        if not req.complete and self._paused:
            self.resume(self.PIPELINE)
        idle = self._idle
        conn = idle.pop() if idle else None
        if conn is not None and conn.closed:
            conn = self.side.pool.take_from(idle)
        if conn is not None:
            req.reused = True
            self._bind(conn, req)
            return
        self.pause(self.CONNECTING)
        self._connect_task = self.side.tasks.spawn(
            self._connect(req), name=f"lacewing-connect-{self.side.direction}-{self.endpoint}"
        )

    async def _connect(self, req: Request) -> None:
        side, endpoint = self.side, self.endpoint
        stats = side.metrics.tcp_stats(
            side.direction, "dst", str(endpoint), side.peer_tls(endpoint)
        )
        try:
            _, conn = await side.connector.connect(
                endpoint, lambda: UpstreamConn(endpoint, stats, side.pool)
            )
        except ConnectError as exc:
            self._connect_task = None
            if not self.closed and req is self.active and self._repick(req):
                return
            status = 504 if isinstance(exc, ConnectTimeout) else 502
            if not self.closed and req is self.active and self._retry_failed(req, status):
                return  # the route retries it on another endpoint (`http1.routing`)
            if not self.closed and req is self.active:
                self._answer_error(req, status, exc.reason, endpoint_failed=True)
            elif req.pick is not None:
                req.pick.fail()
            return
        self._connect_task = None
        if self.closed or req is not self.active:
            conn.close()
            return
        self._bind(conn, req)
        self.resume(self.CONNECTING)

    def _repick(self, req: Request) -> bool:
        """A connect that failed sent nothing, so a request balanced per request may go to
        another endpoint, once: the balancer has counted the failure (and ejected the
        endpoint), and the request is connected to its next pick if that is a different one.
        A routed request is left to its route (its backend's balancer and retry policy), so a
        failed connect never moves it to another backend of a split."""
        old = req.pick
        if self._pick is not None or req.repicked or old is None or old.ticket is None:
            return False
        if req.routed is not None:
            return False
        req.repicked = True
        old.fail()
        pick = self.side.pick(self.logical)
        if pick.endpoint.addr == self.endpoint:
            pick.cancel()
            return False
        side, host = self.side, self._last_host
        self.target, self.endpoint = pick.endpoint, pick.endpoint.addr
        self._idle = side.pool.bucket(self.endpoint)
        route = side.metrics.route(
            side.direction, host.decode("latin-1"), self.target_addr,
            side.route_labels(self.target),
        )  # fmt: skip
        req.route.requests -= 1
        route.requests += 1
        self._last_route = req.route = route
        req.pick = pick
        self._connect_task = side.tasks.spawn(
            self._connect(req), name=f"lacewing-connect-{side.direction}-{self.endpoint}"
        )
        return True

    def _bind(self, conn: UpstreamConn, req: Request) -> None:
        conn.server = self
        conn.head_sent = False
        req.upstream = conn
        if self._down_paused and conn.transport is not None:
            conn.transport.pause_reading()
        if conn.paused_writing:
            self.pause(self.UPSTREAM_FULL)
        if req.buf:
            self._flush_up(req)

    def send_down(self, data: bytes) -> None:
        self._dout.append(data)

    def flush_down(self) -> None:
        out = self._dout
        if not out or self.closed or self.transport is None:
            out.clear()
            return
        data = b"".join(out) if len(out) > 1 else out[0]
        out.clear()
        self.src.write_bytes += len(data)
        self.transport.write(data)

    def response_head(self, status: int, head: bytes, close_down: bool) -> None:
        req: Request = self.active  # type: ignore[assignment]  # only called while active
        if req.routed is not None and not req.routed.simple:
            routed_head = self._response_head(req, status, head)
            if routed_head is None:  # retried
                return
            head = routed_head
        req.close_down = close_down
        req.answered(status, self._clock())
        self._dout.append(head)

    def response_complete(self, conn: UpstreamConn) -> None:
        req = self.active
        if req is not None and req.ttfb:  # ended without a body: counted at its end
            req.first_byte(self._clock())
        out = self._dout
        if out:
            data = b"".join(out) if len(out) > 1 else out[0]
            out.clear()
            if not self.closed and self.transport is not None:
                self.src.write_bytes += len(data)
                self.transport.write(data)
        if self._down_paused or conn.paused_writing:
            if self._down_paused and conn.transport is not None and not conn.closed:
                conn.transport.resume_reading()
            if conn.paused_writing:
                self.resume(self.UPSTREAM_FULL)
        if req is None:
            conn.close()
            return
        req.upstream = None
        if req.timer is not None:  # the route's request timeout: the response is complete
            req.timer.cancel()
            req.timer = None
        home = conn.home
        if conn.reusable and req.complete and not conn.closed and len(home) < self._pool_cap:
            conn.swept = False
            home.append(conn)
        else:
            conn.close()
        self.active = None
        self.touched = True
        if req.close_down or not req.complete or self._client_eof or self.closing:
            self.close()
            return
        if self.queue:
            self._start(self.queue.popleft())
        elif self._paused:
            self.resume(self.PIPELINE)

    def upstream_failed(self, conn: UpstreamConn, reason: str) -> None:
        conn.server = None
        conn.abort()
        if conn.paused_writing:  # its full buffer no longer holds the client back
            self.resume(self.UPSTREAM_FULL)
        req = self.active
        if req is None:
            return
        req.upstream = None
        if conn.head_sent:
            self.flush_down()
            self.abort()  # a truncated response must not look complete
        elif req.reused and req.replay is not None and req.complete and not conn.answering:
            # The app closed a pooled connection as we reused it: nothing was processed,
            # so the body-less request is sent once more on a new connection.
            req.reused = False
            req.buf = [req.replay]
            if req.sent is not None:  # (kept for a route's retry: it is sent again whole)
                req.sent, req.sent_size = [], 0
            self.pause(self.CONNECTING)
            self._connect_task = self.side.tasks.spawn(
                self._connect(req), name=f"lacewing-reconnect-{self.side.direction}-{self.endpoint}"
            )
        elif not self._retry_failed(req, 502):  # (a route retrying 502 sends it elsewhere)
            # the endpoint died (or spoke nonsense) before answering
            self._answer_error(req, 502, reason, endpoint_failed=True)

    def upstream_upgraded(self, conn: UpstreamConn, rest: bytes) -> None:
        """The endpoint answered 101: both sockets become a byte tunnel."""
        if rest:
            self._dout.append(rest)
        self.flush_down()
        req = self.active
        conn.server = None
        if self.closed or self.transport is None or conn.transport is None or req is None:
            conn.abort()
            return
        transport = self.transport
        conns = self.side.conns
        self.parser = _DETACHED

        def forget() -> None:
            conns.pop(transport, None)

        down = TunnelEnd(self.src, on_lost=forget)
        up = TunnelEnd(conn.stats)
        self.side.conns[transport] = TunnelConn(down)
        down.adopt(transport)
        up.adopt(conn.transport)
        conn.closed = True  # its socket now belongs to the tunnel
        join(down, up)
        pending = b"".join(req.buf)
        req.buf.clear()
        if pending:
            up.stats.write_bytes += len(pending)
            conn.transport.write(pending)

    # -- inbound policy ----------------------------------------------------------------
    def _authorize(self, req: Request, method: bytes) -> None:
        """Ask inbound policy about this request; a denied one is answered 403, unsent."""
        gate, side = self._gate, self.side
        assert gate is not None
        client, ip = self._client
        path = self._url.decode("latin-1")
        decision = gate.request(self.dst.port, client, ip, method.decode("latin-1"), path,
                                self._header)  # fmt: skip
        family, labels = counter(decision)
        side.metrics.authorized(family, self.target_addr, labels + side.tls)
        if decision.not_found:
            req.error = (NOT_FOUND_HTTP_STATUS, "no route of this port's server matches")
        elif not decision.allowed:
            req.error = (403, "unauthorized request on this port")

    # -- errors ------------------------------------------------------------------------
    def _head_timed_out(self) -> None:
        """A request head trickled in for longer than the header read timeout."""
        self._head_timer = None
        if not self.closed and self._cur is None:
            self._reject(408, "request header read timed out")

    def _reject(self, status: int, reason: str) -> None:
        """A request could not be parsed: answer after those ahead of it, then close."""
        cur, self._cur = self._cur, None
        if cur is not None and cur is not self.active and cur not in self.queue:
            cur.abandoned()  # its head was refused before it was started (too large)
        elif cur is not None:  # the body of a request already under way is malformed
            self._in_message = False
            self._broken = True
            self.pause(self.PIPELINE)
            if cur is self.active:  # part of it went upstream: that exchange cannot finish
                up = cur.upstream
                if up is not None:
                    cur.upstream, up.server = None, None
                    up.abort()
                self._answer_error(cur, status, reason)
            else:  # still queued: answer the error in its turn, forward nothing of it
                cur.error, cur.complete, cur.buf = (status, reason), True, []
            return
        route = self.side.metrics.route(self.side.direction, "", self.target_addr, self.side.tls)
        route.requests += 1
        req = Request(route, self.side.clock())
        req.error = (status, reason)
        req.complete = True
        self._in_message = False
        self._broken = True
        self.pause(self.PIPELINE)
        if self.active is None:
            self._start(req)
        else:
            self.queue.append(req)

    def _answer_error(
        self, req: Request, status: int, reason: str, *, endpoint_failed: bool = False
    ) -> None:
        if req.status:  # a response already started: all we can do is cut it
            req.abandoned()
            self.abort()
            return
        if req.timer is not None:
            req.timer.cancel()
        if endpoint_failed:
            req.failed(status, self._clock())
        else:
            req.refused(status, self._clock())
        self._dout.append(req.canned or error_response(status, reason))
        self.flush_down()
        self.active = None
        self.queue.clear()
        self.close()
