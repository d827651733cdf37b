"""One accepted HTTP/2 connection (prior-knowledge h2c, or ALPN `h2` inside mutual TLS).

Each request stream becomes an `H2Exchange`: its endpoint is picked on its own
(`side.route_pick(Logical(orig_dst, "h2", authority), method, path, header)`), so the streams
of one client connection (one gRPC channel) spread over the endpoints of a Service; to a
destination with routes (HTTPRoute, GRPCRoute) the route layer picks the rule, the backend
of a traffic split and its endpoint, and the exchange takes the rule's steps
(`h2.routing`), and it is sent on a multiplexed
upstream connection from the side's `H2Pool`. Request metrics are the HTTP/1 server's
(`side.metrics.route(...)`: request_total, response_total, response_latency_ms).

Inbound, with a policy `gate`, every request is authorized on its own (as HTTP/1's are): a
denied one is answered 403 (gRPC: PERMISSION_DENIED) by the proxy and never sent on.

Limits, from `H2Limits`: the codec's (more concurrent streams than we allow, a header list
over the size we announced, a SETTINGS, PING or CONTINUATION flood, any malformed frame ->
GOAWAY with the error's code and the connection closes; other connections are not touched),
and two here: more streams reset by the client before their answer than
`max_early_resets_per_s` in a second (rapid reset) -> GOAWAY ENHANCE_YOUR_CALM; a stream with
no frame either way for `stream_idle_s` (it never ends, or its reader holds a window at zero)
is timed out at the next sweep (`H2Exchange.timed_out`: 504 / gRPC DEADLINE_EXCEEDED before
an answer, RST_STREAM CANCEL after one).

Backpressure in: when an upstream connection this connection's streams use cannot write
(its transport paused), that upstream blocks reading here (`block_reading`, counted, so two
upstreams cannot undo each other). Out: when this client reads slowly, DATA for it waits in
its exchanges and is not acknowledged upstream, so the endpoints' windows close.

Shutdown (`drain`): a graceful GOAWAY naming the last stream we accepted; streams after it
are refused (REFUSED_STREAM, which clients retry elsewhere); the connection closes when its
last stream ends, or when the side's grace period aborts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from lacewing.proxy.config import Addr
from lacewing.proxy.h2 import routing
from lacewing.proxy.h2.codec import Headers as HeaderList
from lacewing.proxy.h2.frames import ErrorCodes
from lacewing.proxy.h2.headers import Headers, is_grpc, pseudo
from lacewing.proxy.h2.peer import H2Peer
from lacewing.proxy.h2.pool import pool_of
from lacewing.proxy.h2.settings import H2Limits
from lacewing.proxy.h2.stream import H2Exchange
from lacewing.proxy.metrics import RouteStats, TcpStats
from lacewing.proxy.policy.gate import NOT_FOUND_GRPC_STATUS, NOT_FOUND_HTTP_STATUS, counter
from lacewing.proxy.routes import Routed
from lacewing.proxy.side import Side
from lacewing.proxy.targets import HTTP2, Endpoint, Logical, Pick

__all__ = ["H2Server"]

_MAX_STREAM_ID = 2**31 - 1


class H2Server(H2Peer):
    client_side = False

    def __init__(self, side: Side, dst: Addr, stats: TcpStats,
                 limits: H2Limits | None = None) -> None:  # fmt: skip
        pool = pool_of(side)
        super().__init__(pool.flusher, limits or pool.limits, stats, side.clock)
        self.side = side
        self.pool = pool
        self.dst = dst
        self.target_addr = str(dst)
        self.draining = False
        self.peer_gone = False
        self.goaway_last = _MAX_STREAM_ID
        self.touched = True
        self._read_blocks = 0
        self._resets, self._resets_since = 0, float("-inf")
        self._gate = side.gate if side.direction == "inbound" else None
        self._client: tuple[str | None, str] = (None, "")
        self._logical: dict[str, Logical] = {}
        self._routes: dict[tuple[str, Endpoint], RouteStats] = {}
        # the last stream's head and what it said, and its route: the next stream of a
        # channel is most often the same call again (found by identity, never hashed)
        self._head: HeaderList | None = None
        self._head_facts: tuple[str, Logical, bool] = ("", Logical(dst, HTTP2), False)
        self._last_endpoint: Endpoint | None = None
        self._last_authority = ""
        self._last_stats: RouteStats | None = None

    def adopt(self, transport: asyncio.Transport, early: bytes = b"") -> None:
        """Take over a transport another protocol (detection, TLS) was reading."""
        transport.set_protocol(self)
        self.set_transport(transport)
        self.side.conns[transport] = self
        if self._gate is not None:
            self._client = self.side.client_of(transport)
        if early:
            self.data_received(early)
        else:
            self.flusher.mark(self)
            self.flusher.flush()

    def received(self) -> None:
        self.touched = True

    # -- requests --------------------------------------------------------------------------
    def on_request(self, sid: int, headers: HeaderList, ended: bool) -> None:
        if self.draining and sid > self.goaway_last:
            self.conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        if headers is self._head:  # the same head as the last stream's (the decoder's memo)
            authority, logical, grpc = self._head_facts
        else:
            raw = pseudo(headers, b":authority") or pseudo(headers, b"host") or b""
            authority = raw.decode("latin-1")
            known = self._logical.get(authority)
            if known is None:
                known = self._logical[authority] = Logical(self.dst, HTTP2, authority or None)
            logical, grpc = known, is_grpc(headers)
            self._head, self._head_facts = headers, (authority, logical, grpc)
        side = self.side
        routed: Routed | None = None
        if side.router is None:
            pick: Pick | None = side.pick(logical)
        else:
            method = (pseudo(headers, b":method") or b"").decode("latin-1")
            path = (pseudo(headers, b":path") or b"/").decode("latin-1")
            pick, routed = side.route_pick(logical, method, path, _header_of(headers))
        endpoint = pick.endpoint if pick is not None else Endpoint(self.dst)
        route = self._last_stats
        if (
            route is None
            or self._last_endpoint is not endpoint
            or self._last_authority != authority
        ):
            route = self._route(authority, endpoint)
            self._last_endpoint, self._last_authority, self._last_stats = endpoint, authority, route
        route.requests += 1
        ex = H2Exchange(self, sid, headers, grpc, route, side.clock(), pick)
        ex.logical, ex.authority = logical, authority
        if routed is not None:
            ex.routed = routed
        if route.tap.hub is not None:  # someone taps (proxy.tap)
            ex.method = (pseudo(headers, b":method") or b"").decode("latin-1")
            ex.path = (pseudo(headers, b":path") or b"").decode("latin-1")
        self.streams[sid] = ex
        if ended:
            ex.req_ended = True
        if self._gate is not None and not self._authorized(ex, headers):
            return
        if routed is not None and not routing.arm(ex):
            return  # answered by the proxy, or held by an injected delay
        assert pick is not None
        self.pool.open(ex, pick.endpoint.addr)

    def _route(self, authority: str, endpoint: Endpoint) -> RouteStats:
        route = self._routes.get((authority, endpoint))
        if route is None:
            side = self.side
            route = side.metrics.route(side.direction, authority, self.target_addr,
                                       side.route_labels(endpoint))  # fmt: skip
            self._routes[(authority, endpoint)] = route
        return route

    def retarget(self, ex: H2Exchange, pick: Pick) -> None:
        """A retry goes to `pick`: its request is counted on that endpoint's stats too."""
        ex.route = self._route(ex.authority, pick.endpoint)
        ex.route.requests += 1

    def repick(self, ex: H2Exchange) -> Addr:
        """A new pick for a refused stream: another endpoint when the balancer has one (a
        few tries; P2C picks at random), its request counted there instead."""
        logical = ex.logical
        assert logical is not None
        old = ex.pick.endpoint if ex.pick is not None else None
        routed = ex.routed
        router = self.side.router
        if routed is not None and routed.backend is not None and router is not None:
            again = router.retry(routed, logical)  # the same backend of the route
            if again.pick is not None:
                ex.routed = again
                ex.route.requests -= 1
                ex.route = self._route(ex.authority, again.pick.endpoint)
                ex.route.requests += 1
                ex.pick = again.pick
                return again.pick.endpoint.addr
        pick = self.side.pick(logical)
        for _ in range(3):
            if pick.endpoint != old:
                break
            pick.cancel()
            pick = self.side.pick(logical)
        ex.route.requests -= 1
        ex.route = self._route(ex.authority, pick.endpoint)
        ex.route.requests += 1
        ex.pick = pick
        return pick.endpoint.addr

    def _authorized(self, ex: H2Exchange, headers: Headers) -> bool:
        """Inbound policy for one request, counted as HTTP/1's are; a refused one is answered."""
        gate, side = self._gate, self.side
        assert gate is not None
        client, ip = self._client
        method = (pseudo(headers, b":method") or b"").decode("latin-1")
        path = (pseudo(headers, b":path") or b"").decode("latin-1")
        decision = gate.request(self.dst.port, client, ip, method, path, _header_of(headers))
        family, labels = counter(decision)
        side.metrics.authorized(family, self.target_addr, labels + side.tls)
        if decision.not_found:
            ex.deny("no route of this port's server matches", NOT_FOUND_HTTP_STATUS,
                    NOT_FOUND_GRPC_STATUS)  # fmt: skip
        elif not decision.allowed:
            ex.deny("unauthorized request on this port")
        return decision.allowed

    def on_data(self, sid: int, data: bytes, flow: int, ended: bool) -> None:
        ex = self.streams.get(sid)
        if ex is None:  # a stream we already ended: give the window back
            self.conn.acknowledge_received_data(flow, sid)
            return
        ex.request_data(data, flow, ended)

    def on_trailers(self, sid: int, headers: HeaderList) -> None:
        ex = self.streams.get(sid)
        if ex is not None:
            ex.request_ended(headers)

    def on_reset(self, sid: int, code: int) -> None:
        ex = self.streams.get(sid)
        if ex is None:
            return
        early = not ex.ended
        ex.reset_by_client(code)
        if early and self._early_reset():
            self.calm_down()

    def _early_reset(self) -> bool:
        """Count a stream reset before its answer; True past the limit (a rapid-reset flood)."""
        now = self.side.clock()
        if now - self._resets_since >= 1.0:
            self._resets_since, self._resets = now, 0
        self._resets += 1
        return self._resets > self.limits.max_early_resets_per_s

    def calm_down(self) -> None:
        """GOAWAY ENHANCE_YOUR_CALM and close: the streams in flight end as the client's."""
        if self.closed or self.transport is None:
            return
        self.conn.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
        self.write_out()
        self.transport.close()

    def on_window(self, sid: int) -> None:
        if sid == 0:
            self.writable()
        else:
            ex = self.streams.get(sid)
            if ex is not None:
                ex.pump_down()

    def on_goaway(self, code: int, last_sid: int) -> None:
        self.peer_gone = True
        if code == ErrorCodes.NO_ERROR and self.streams:
            return  # the client waits for the answers it asked for
        if self.transport is not None:
            self.transport.close()

    def writable(self) -> None:
        for ex in list(self.streams.values()):
            ex.pump_down()

    # -- reading paused by upstreams that cannot write -------------------------------------
    def block_reading(self) -> None:
        self._read_blocks += 1
        if self._read_blocks == 1 and self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def unblock_reading(self) -> None:
        self._read_blocks -= 1
        if self._read_blocks == 0 and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # -- endings ---------------------------------------------------------------------------
    def stream_finished(self) -> None:
        if not self.streams and (self.draining or self.peer_gone):
            self._close()

    def _close(self) -> None:
        if self.closed or self.transport is None:
            return
        self.write_out()
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.stats.close(exc, self.opened_at)
        if self.transport is not None:
            self.side.conns.pop(self.transport, None)
        for ex in list(self.streams.values()):
            ex.reset_by_client(ErrorCodes.CANCEL)
        self.streams.clear()
        self.flusher.flush()

    # -- side.Conn -------------------------------------------------------------------------
    def drain(self) -> None:
        if self.draining or self.closed:
            return
        self.draining = True
        self.goaway_last = self.conn.highest_inbound_stream_id
        self.write_graceful_goaway(self.goaway_last)
        if not self.streams:
            self._close()

    def sweep_idle(self) -> None:
        if not self.touched and not self.streams:
            self.drain()
        self.touched = False
        if self.streams:
            self._sweep_streams()

    def _sweep_streams(self) -> None:
        """Time out streams with no frame either way for `stream_idle_s`."""
        now = self.side.clock()
        limit = self.limits.stream_idle_s
        for ex in list(self.streams.values()):
            if ex.touched:
                ex.touched = False
                ex.quiet_since = now
            elif now - ex.quiet_since >= limit:
                ex.timed_out()
        self.flusher.flush()


def _header_of(headers: Sequence[tuple[bytes, bytes]]) -> Callable[[str], str | None]:
    """`header(name)` for the route matcher: the first value of a lower-case header name."""

    def header(name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in headers:
            if key == wanted:
                return value.decode("latin-1")
        return None

    return header
