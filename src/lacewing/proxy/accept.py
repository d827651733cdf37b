"""The first protocol of every accepted connection: where was it going, and what is it?

`Accepted.connection_made` enforces the connection limit, finds the original destination
(`side.fixed_dst`, else SO_ORIGINAL_DST; neither -> the connection is closed and counted as
`error="no_original_dst"`, never forwarded somewhere by guess; except inbound with mesh TLS,
where a connection dialled straight to the listener is for the proxy itself and goes to the
terminator at once: mTLS is terminated, and the decrypted stream, which has no destination
either, is then closed as `no_original_dst`) and, for opaque ports, starts
relaying at once, so server-speaks-first protocols work. Inbound with mesh TLS (a
`tls_terminator`) an opaque port still has to terminate a meshed client's mTLS: the first
bytes are awaited for at most `OPAQUE_TLS_SNIFF` seconds (a meshed client's proxy writes its
ClientHello as it connects); a TLS record goes to the terminator, anything else, or silence
(a server-speaks-first protocol), is relayed as opaque. Otherwise it collects the first bytes
until `detect` decides or the detect timeout fires (-> opaque), then hands the socket and the
bytes it read to the protocol's handler with `transport.set_protocol`:

    HTTP/1           -> http1.server.Http1Server
    HTTP/2           -> h2.server.H2Server (prior knowledge; each stream balanced on its own)
    TLS              -> side.tls_terminator if installed, else opaque (tls="no_identity",
                        no_tls_reason="passthru")
    opaque           -> tcp.TunnelEnd pair, connected through side.connector

With discovery, a connection to a destination discovery has not answered about yet waits for
that first answer (at most `discovery_wait`, reading paused, bytes kept) before it is handed
on, so its first request is balanced and labelled like the rest; after the wait it goes to the
original destination as it would without discovery. A connection to a Service that has
just lost every endpoint waits the same way (for the rest of `discovery_wait` after it became
empty) for one to come back; then its HTTP requests get the proxy's 503 (opaque traffic goes to
the original destination, as without discovery).
Inbound, with a policy controller, the
first connections to a port wait the same way (at most `policy_wait`) for its first policy,
so they are not decided by the default policy only because they came first.

The HTTP/2 codec and the `h2` library are imported when the first HTTP/2 connection arrives
(`h2_server`), not at start-up: a proxy that never sees HTTP/2 does not carry them (about
1.8 MB of private memory). A side derived per TLS client (`mux_parent` set) shares its
parent's HTTP/2 pool, as it shares its HTTP/1 pool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, cast

from lacewing.proxy.config import Addr
from lacewing.proxy.detect import MAX_PREFIX, Protocol, detect, detect_opaque
from lacewing.proxy.http1.server import Http1Server
from lacewing.proxy.metrics import TcpStats
from lacewing.proxy.metrics.proxy import TLS_PASSTHRU
from lacewing.proxy.side import Side
from lacewing.proxy.targets import OPAQUE, Logical
from lacewing.proxy.tcp import TunnelEnd, join
from lacewing.proxy.transport import ConnectError, original_dst

if TYPE_CHECKING:
    from lacewing.proxy.h2.server import H2Server

__all__ = ["Accepted", "admit", "h2_server", "relay"]

log = logging.getLogger("lacewing.proxy")
OPAQUE_TLS_SNIFF = 0.3  # seconds an opaque inbound port waits for a meshed client's TLS


def _local_addr(transport: asyncio.Transport) -> Addr | None:
    name = transport.get_extra_info("sockname")
    if not isinstance(name, tuple) or len(name) < 2:
        return None
    return Addr(str(name[0]), int(name[1]))


class Accepted(asyncio.Protocol):
    def __init__(self, side: Side) -> None:
        self.side = side
        self.transport: asyncio.Transport | None = None
        self.dst: Addr | None = None
        self.stats: TcpStats | None = None
        self._buf = b""
        self._timer: asyncio.TimerHandle | None = None
        self._done = False
        self._waiting: asyncio.Task[None] | None = None  # for discovery's first answer
        self._eof = False  # the client half-closed while we waited
        self._opaque = False  # an opaque port where only mesh TLS is told apart

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        side = self.side
        self.transport = transport = cast(asyncio.Transport, transport)
        if side.closing or len(side.conns) >= side.config.max_connections:
            side.metrics.error(side.direction, "connection_limit")
            self._done = True
            transport.abort()
            return
        dst = side.fixed_dst
        if dst is None:
            sock = transport.get_extra_info("socket")
            dst = original_dst(sock) if sock is not None else None
        if dst is None and side.tls_terminator is not None and side.client_identity is None:
            # Dialled straight to the inbound listener (`lacewing identity`, a prober): the
            # proxy's own port speaks mutual TLS only, so it is terminated whatever it sends.
            local = _local_addr(transport)
            if local is not None:
                self._done = True
                side.tls_terminator.terminate(side, transport, b"", local)
                return
        if dst is None:
            side.metrics.error(side.direction, "no_original_dst")
            self._done = True
            transport.abort()
            return
        self.dst = dst
        self.stats = side.metrics.tcp_stats(side.direction, "src", str(dst), side.tls)
        self.stats.opened += 1
        self.opened_at = self.stats.clock()
        side.conns[transport] = self
        loop = asyncio.get_running_loop()
        if dst.port in side.config.opaque_ports:
            if side.tls_terminator is None or side.client_identity is not None:  # (decrypted)
                self._dispatch(Protocol.OPAQUE)
                return
            self._opaque = True
            self._timer = loop.call_later(OPAQUE_TLS_SNIFF, self._detect_timeout)
            return
        self._timer = loop.call_later(side.config.detect_timeout, self._detect_timeout)

    def data_received(self, data: bytes) -> None:
        if self._waiting is not None:
            self._buf += data  # uvloop may deliver while paused: keep it for the handler
            return
        if self._done:
            return
        self._buf += data
        proto = self._detect(final=len(self._buf) >= MAX_PREFIX)
        if proto is not None:
            self._dispatch(proto)

    def eof_received(self) -> bool:
        # The client sent what it had and half-closed: decide with what we have.
        if self._waiting is not None:
            self._eof = True  # half-closed while waiting for discovery: told to the handler
            return True
        if self._done or self.transport is None:
            return False
        self._dispatch(self._detect(final=True) or Protocol.OPAQUE)
        handler = self.transport.get_protocol()
        if handler is not self and not handler.eof_received():  # type: ignore[attr-defined]
            self.transport.close()
        return True

    def _detect(self, *, final: bool) -> Protocol | None:
        if self._opaque:
            return detect_opaque(self._buf, final=final)
        return detect(self._buf, final=final)

    def _detect_timeout(self) -> None:
        self._timer = None
        if not self._done:
            self._dispatch(self._detect(final=True) or Protocol.OPAQUE)

    def _dispatch(self, proto: Protocol) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        side, transport, dst = self.side, self.transport, self.dst
        assert transport is not None and dst is not None
        if side.discovering(dst) or side.policy_pending(dst):
            transport.pause_reading()
            self._waiting = side.tasks.spawn(
                self._wait_for_first_answer(proto, dst), name=f"lacewing-discover-{dst}"
            )
            return
        self._hand_on(proto)

    async def _wait_for_first_answer(self, proto: Protocol, dst: Addr) -> None:
        side = self.side
        try:
            discovery = side.discovery
            if discovery is not None and side.discovering(dst):
                await discovery.wait(dst, side.config.discovery_wait)
                left = discovery.refilling(dst, side.config.discovery_wait)
                if left > 0:  # a Service that just lost its endpoints: they may come back
                    await discovery.wait_endpoints(dst, left)
            if side.policy_client is not None and side.policy_pending(dst):
                await side.policy_client.wait(dst.port, side.config.policy_wait)
        finally:
            self._waiting = None
        transport = self.transport
        if transport is None or transport.is_closing() or transport.get_protocol() is not self:
            return
        transport.resume_reading()
        self._hand_on(proto)
        handler = transport.get_protocol()
        if self._eof and not handler.eof_received():  # type: ignore[attr-defined]
            transport.close()

    def _hand_on(self, proto: Protocol) -> None:
        side, transport, dst, stats = self.side, self.transport, self.dst, self.stats
        assert transport is not None and dst is not None and stats is not None
        early, self._buf = self._buf, b""
        # (HTTP is authorized per request, a denied one answered 403, as Linkerd does)
        if side.gate is not None and proto not in _PER_REQUEST and not admit(side, transport, dst,
                                                                             proto):  # fmt: skip
            return
        if proto is Protocol.HTTP1:
            server = Http1Server(side, dst, stats)
            side.conns[transport] = server
            server.adopt(transport, early)
            return
        if proto is Protocol.HTTP2:
            h2_server(side, dst, stats).adopt(transport, early)
            return
        if proto is Protocol.TLS:
            if side.tls_terminator is not None:
                side.tls_terminator.take(side, transport, early, dst, stats)
                return
            stats.opened -= 1
            stats = side.metrics.tcp_stats(side.direction, "src", str(dst), TLS_PASSTHRU)
            stats.opened += 1
            relay(side, transport, early, dst, stats, TLS_PASSTHRU)
            return
        relay(side, transport, early, dst, stats, side.tls)

    # side.Conn while detecting
    def drain(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def sweep_idle(self) -> None:
        pass

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiting is not None:
            self._waiting.cancel()
        if self.stats is not None and self.transport is not None:
            self.stats.close(exc, self.opened_at)
            self.side.conns.pop(self.transport, None)
        self._done = True


_PER_REQUEST = (Protocol.TLS, Protocol.HTTP1, Protocol.HTTP2)  # TLS: after the handshake


def h2_server(side: Side, dst: Addr, stats: TcpStats) -> H2Server:
    """The HTTP/2 server for one connection; its codec is imported on first use."""
    from lacewing.proxy.h2.pool import pool_of
    from lacewing.proxy.h2.server import H2Server

    if side.mux_parent is not None and side.mux_pool is None:
        side.mux_pool = pool_of(side.mux_parent)  # one HTTP/2 pool to the app, whoever the client
    return H2Server(side, dst, stats)


_HTTP = (Protocol.HTTP1, Protocol.HTTP2)


def admit(side: Side, transport: asyncio.Transport, dst: Addr, proto: Protocol) -> bool:
    """Inbound policy for a new connection (after TLS): False when it was refused (aborted,
    before a byte reached the app, and counted as `inbound_tcp_authz_deny_total`)."""
    gate = side.gate
    if gate is None:
        return True
    client, ip = side.client_of(transport)
    verdict = gate.connection(dst.port, client, ip)
    labels = verdict.decision.labels + side.tls
    if verdict.accept and not (verdict.http_only and proto not in _HTTP):
        if not verdict.http_only:  # (probes/routes only: each request decides, is counted)
            side.metrics.authorized("inbound_tcp_authz_allow_total", str(dst), labels)
        return True
    side.metrics.authorized("inbound_tcp_authz_deny_total", str(dst), labels)
    log.debug("inbound %s from %s (%s): denied by policy", dst, ip, client or "no identity")
    transport.abort()
    return False


class _RelayConn:
    """side.Conn for a relayed connection: only the shutdown deadline ends it."""

    def __init__(self, end: TunnelEnd, task: asyncio.Task[None] | None = None) -> None:
        self.end = end
        self.task = task

    def drain(self) -> None:
        pass

    def sweep_idle(self) -> None:
        pass

    def abort(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.end.abort()


def relay(
    side: Side,
    transport: asyncio.Transport,
    early: bytes,
    dst: Addr,
    stats: TcpStats,
    tls: tuple[tuple[str, str], ...],
) -> None:
    """Relay `transport` (with `early` bytes already read) to the endpoint for `dst`."""
    conns = side.conns
    holder: dict[str, asyncio.Task[None]] = {}

    def lost() -> None:
        conns.pop(transport, None)
        task = holder.get("task")
        if task is not None:
            task.cancel()

    down = TunnelEnd(stats, on_lost=lost)
    down.adopt(transport, early)
    down.transport = transport
    if not early:
        transport.pause_reading()
    # Opaque traffic is balanced per connection: the pick ends when the connection is made
    # (its connect time is the latency the balancer sees) or fails, or is cancelled.
    # (a known Service with no endpoints: its `Empty` pick names the original destination,
    # so the connection goes there, as without discovery: a TLS client of a Service whose
    # endpoints discovery does not see, such as the API server's, must still get through)
    pick = side.pick(Logical(dst, OPAQUE))
    endpoint = pick.endpoint.addr
    up_tls = side.connector.labels_for(endpoint) or tls
    up_stats = side.metrics.tcp_stats(side.direction, "dst", str(endpoint), up_tls)

    async def connect() -> None:
        started = time.monotonic()
        try:
            _, up = await side.connector.connect(endpoint, lambda: TunnelEnd(up_stats))
        except ConnectError as exc:
            log.debug("opaque %s -> %s: %s", dst, endpoint, exc)
            pick.fail()
            if not down.closed:
                transport.close()
            return
        except BaseException:
            pick.cancel()  # cancelled while connecting (client gone, shutdown): no outcome
            raise
        finally:
            holder.pop("task", None)
        pick.done(True, time.monotonic() - started)
        up_stats.opened += 1
        if down.closed:
            up.abort()
            return
        join(down, up)

    task = side.tasks.spawn(connect(), name=f"lacewing-connect-{side.direction}-{endpoint}")
    holder["task"] = task
    conns[transport] = _RelayConn(down, task)
