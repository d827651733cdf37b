"""Mutual TLS between meshed proxies: the outbound connector and the inbound terminator.

These plug into the proxy's two TLS seams (`lacewing.proxy.side`) without the HTTP or TCP
code knowing:

Outbound, `MeshTlsConnector` (a `transport.Connector`): if `expected_identity(addr)` knows
the endpoint's identity, the connection is TLS 1.3 with this proxy's certificate, the peer
verified against the trust anchors *and* its DNS SAN checked against that identity (it is
passed as the TLS server name). ALPN names the carried protocol, chosen by the class of
the connection's protocol (`ALPN_BY_PROTOCOL`): `h2` for multiplexed HTTP/2 connections,
`lacewing.io/opaque` for relayed TCP, `http/1.1` for the HTTP/1 pool's connections. A
handshake failure is counted (`outbound_tcp_errors_total{error="tls_<reason>"}`) and fails
the connection as a `ConnectTlsError` (a `ConnectError`: 502 for HTTP, a close for TCP); it
never falls back to plaintext. Endpoints without a known identity get the plain connector.

Inbound, `MeshTlsTerminator` (a `side.TlsTerminator`): the accept layer detected a TLS
record and hands over the socket plus the bytes it already read. As Linkerd's proxy does, the
terminator first reads the whole ClientHello (`clienthello.parse_client_hello`, bounded in
size and by the detect timeout) and routes on its server name (`inbound_tls_route`):

    SNI == this proxy's identity     terminate mutual TLS (below)
    any other SNI                    relay the bytes untouched to the app: TLS meant for the
                                     app itself (a webhook, the identity controller's own
                                     listener); tls="opaque",sni="<name>"
    no SNI, not a ClientHello        relay untouched; tls="no_identity",
                                     no_tls_reason="no_tls_from_remote"
    no whole ClientHello in time     relay untouched; no_tls_reason="detect_timeout"

(these are linkerd2-proxy's inbound TLS labels). TLS whose original destination is the
proxy's own inbound port was dialled to the proxy directly: it is always terminated.

To terminate, the terminator puts a TLS protocol on the socket (what `loop.start_tls` would
use: uvloop's compiled one on uvloop, which costs far less CPU per record than asyncio's
pure-Python `asyncio.sslproto.SSLProtocol`, used on other loops; `TLS_PROTOCOLS` is the
table), replays those bytes into it, and after the
handshake (client certificate required, from the same trust anchors) reads the client's
identity and serves the decrypted stream exactly as a plaintext connection: ALPN
`lacewing.io/opaque` -> TCP relay at once (server-speaks-first protocols work), ALPN `h2` ->
the HTTP/2 server (`h2.server.H2Server`), otherwise the usual protocol detection. Its
metrics carry `tls="true"` and `client_id="<identity>"`: each client identity gets a derived
`Side` (same pools, tasks and connection table; only the labels differ), cached. Failures
are counted as `inbound_tcp_errors_total{error="tls_<reason>"}` and close the connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import socket
import ssl
from collections.abc import Callable
from typing import TypeVar, cast

from lacewing.core.identity import Identity
from lacewing.proxy.accept import Accepted, admit, h2_server, relay
from lacewing.proxy.config import Addr
from lacewing.proxy.detect import Protocol
from lacewing.proxy.http1.upstream import UpstreamConn
from lacewing.proxy.identity.clienthello import ClientHello, NeedMore, NotTls, parse_client_hello
from lacewing.proxy.identity.expiry import ExpiryWatch
from lacewing.proxy.identity.holder import TlsHolder
from lacewing.proxy.identity.tlsproto import TLS_PROTOCOLS, LostHook, tls_protocol_for
from lacewing.proxy.identity.verify import peer_identity, tls_failure_reason
from lacewing.proxy.metrics import TcpStats
from lacewing.proxy.metrics.proxy import TlsLabels
from lacewing.proxy.side import Side
from lacewing.proxy.tcp import TunnelEnd
from lacewing.proxy.transport import ConnectError, Connector, ConnectRefused, ConnectTimeout

__all__ = [
    "ALPN_BY_PROTOCOL",
    "ALPN_H2",
    "ALPN_HTTP1",
    "ALPN_OPAQUE",
    "MESH_ALPN",
    "TLS_DETECT_TIMEOUT",
    "TLS_NOT_DISCOVERED",
    "TLS_NO_CLIENT_HELLO",
    "TLS_PROTOCOLS",
    "ConnectTlsError",
    "MeshTlsConnector",
    "MeshTlsTerminator",
    "client_labels",
    "inbound_tls_route",
    "passthru_labels",
    "server_labels",
    "tls_protocol_for",
]

log = logging.getLogger("lacewing.proxy")

ALPN_HTTP1 = "http/1.1"
ALPN_H2 = "h2"
ALPN_OPAQUE = "lacewing.io/opaque"
MESH_ALPN = (ALPN_HTTP1, ALPN_H2, ALPN_OPAQUE)
"""What a mesh listener accepts; give it to `TlsHolder(anchors, alpn=MESH_ALPN)`."""

ALPN_BY_PROTOCOL: dict[type[asyncio.BaseProtocol], str] = {TunnelEnd: ALPN_OPAQUE}
"""The ALPN protocol an outbound connection offers, by its protocol's class (else HTTP/1.1);
HTTP/2's upstream class is added by `alpn_for` when one first connects (h2 loads lazily)."""


def alpn_for(protocol: asyncio.BaseProtocol) -> str:
    kind = type(protocol)
    alpn = ALPN_BY_PROTOCOL.get(kind)
    if alpn is not None:
        return alpn
    if kind is not UpstreamConn:  # HTTP/1's own class: no need to look at HTTP/2's
        from lacewing.proxy.h2.client import H2Upstream

        ALPN_BY_PROTOCOL[H2Upstream] = ALPN_H2
        if kind is H2Upstream:
            return ALPN_H2
    return ALPN_HTTP1


P = TypeVar("P", bound=asyncio.BaseProtocol)


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class ConnectTlsError(ConnectError):
    reason = "tls handshake failed"


def server_labels(identity: Identity) -> TlsLabels:
    """Outbound metric labels for a connection to a meshed endpoint (Linkerd's names)."""
    return (("tls", "true"), ("server_id", identity.name))


def client_labels(identity: Identity) -> TlsLabels:
    """Inbound metric labels for a connection from a meshed client."""
    return (("tls", "true"), ("client_id", identity.name))


def passthru_labels(sni: str) -> TlsLabels:
    """Inbound labels for TLS relayed untouched because it names another server."""
    return (("tls", "opaque"), ("sni", sni))


TLS_NO_CLIENT_HELLO: TlsLabels = (("tls", "no_identity"), ("no_tls_reason", "no_tls_from_remote"))
TLS_DETECT_TIMEOUT: TlsLabels = (("tls", "no_identity"), ("no_tls_reason", "detect_timeout"))
TLS_NOT_DISCOVERED: TlsLabels = (
    ("tls", "no_identity"), ("no_tls_reason", "not_provided_by_service_discovery")
)  # fmt: skip


def inbound_tls_route(
    result: NeedMore | NotTls | ClientHello, local_name: str | None, *, to_proxy: bool = False
) -> TlsLabels | None:
    """None: terminate mutual TLS here; else relay untouched, counted with these labels.

    `result` is what the ClientHello parser said when the reading stopped (NeedMore: the
    detect timeout or the client's EOF came first); `local_name` is this proxy's identity
    (None before it knows one: then nothing is terminated). DNS names compare caselessly.
    `to_proxy`: the connection's original destination is the proxy's own inbound port (a
    client dialled the proxy itself): it is for the proxy whatever its name says, and
    relaying it "to the app" at that port would dial the proxy again, in a loop.
    """
    if to_proxy:
        return None
    if isinstance(result, ClientHello):
        if result.sni is None:
            return TLS_NO_CLIENT_HELLO
        if local_name is not None and result.sni.lower() == local_name.lower():
            return None
        return passthru_labels(result.sni)
    if isinstance(result, NotTls):
        return TLS_NO_CLIENT_HELLO
    return TLS_DETECT_TIMEOUT


class MeshTlsConnector:
    def __init__(
        self,
        holder: TlsHolder,
        expected_identity: Callable[[Addr], Identity | None],
        plain: Connector,
        *,
        timeout: float,
        on_failure: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.holder = holder
        self.expected_identity = expected_identity
        self.plain = plain
        self.timeout = timeout
        self.on_failure = on_failure
        self.handshakes = 0
        self.expiry = ExpiryWatch()

    def labels_for(self, addr: Addr) -> TlsLabels | None:
        """The TLS labels a connection to `addr` will carry, or None if it stays plaintext."""
        identity = self.expected_identity(addr)
        return server_labels(identity) if identity else None

    async def connect(self, addr: Addr, factory: Callable[[], P]) -> tuple[asyncio.Transport, P]:
        identity = self.expected_identity(addr)
        if identity is None:
            return await self.plain.connect(addr, factory)
        protocol = factory()
        alpn = alpn_for(protocol)
        context = self.holder.client_context(alpn)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                opaque = isinstance(protocol, TunnelEnd)
                transport, _ = await loop.create_connection(
                    (lambda: _NoHalfClose(protocol)) if opaque else (lambda: protocol),
                    addr.host,
                    addr.port,
                    ssl=context,
                    server_hostname=identity.name,
                    ssl_handshake_timeout=self.timeout,
                )
        except TimeoutError:
            raise ConnectTimeout(f"connecting to {addr} ({identity}) timed out") from None
        except ssl.SSLError as exc:
            reason = tls_failure_reason(exc)
            self.on_failure(reason)
            raise ConnectTlsError(
                f"mutual TLS with {addr} failed ({reason}): expected {identity}"
            ) from None
        except OSError as exc:
            raise ConnectRefused(f"connecting to {addr}: {exc.strerror or exc}") from None
        self.handshakes += 1
        _nodelay(transport)
        self.expiry.watch(
            transport, _own_not_after(self.holder), lambda: _expire(transport, protocol)
        )
        return transport, protocol


def _own_not_after(holder: TlsHolder) -> float | None:
    creds = holder.credentials
    return creds.not_after.timestamp() if creds is not None else None


def _expire(transport: asyncio.Transport, protocol: asyncio.BaseProtocol) -> None:
    """A certificate of this outbound connection expired: a pooled HTTP/1 connection is
    closed when idle and not reused when busy; any other one closes now."""
    expire = getattr(protocol, "certificate_expired", None)
    if expire is not None:
        expire()
    else:
        transport.close()


class _TlsConn:
    """side.Conn for a connection while its TLS handshake runs."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def drain(self) -> None:
        self.transport.close()

    def sweep_idle(self) -> None:
        pass

    def abort(self) -> None:
        self.transport.abort()


class _Decrypted(asyncio.Protocol):
    """The application protocol under TLS until the handshake is done; then it hands over."""

    def __init__(self, terminator: MeshTlsTerminator, side: Side, dst: Addr) -> None:
        self.terminator, self.side, self.dst = terminator, side, dst
        self.next: asyncio.Protocol | None = None
        self.tls: LostHook | None = None  # the TLS protocol under it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # an asyncio.Transport in all but class on uvloop (see TLS_PROTOCOLS)
        self.next = self.terminator.serve(
            self.side, cast(asyncio.Transport, transport), self.dst, self.tls
        )

    def data_received(self, data: bytes) -> None:  # only before `serve` swapped protocols
        if self.next is not None:
            self.next.data_received(data)

    def eof_received(self) -> bool | None:
        return self.next.eof_received() if self.next is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.next is not None:
            self.next.connection_lost(exc)


class _NoHalfClose(asyncio.Protocol):
    """Forwards to the relay's protocol, but answers EOF with "close": asyncio's TLS cannot
    half-close (returning True from eof_received only earns a warning per connection)."""

    def __init__(self, inner: asyncio.BaseProtocol) -> None:
        self.inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        self.inner.eof_received()  # type: ignore[attr-defined]
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _HelloPeek(asyncio.Protocol):
    """Reads until the ClientHello is whole (or the detect timeout, or EOF), then routes.

    Also the connection's side.Conn meanwhile. Nothing is counted while it reads: the
    connection is counted under the labels of the route it takes.
    """

    def __init__(
        self, terminator: MeshTlsTerminator, side: Side, transport: asyncio.Transport, dst: Addr
    ) -> None:
        self.terminator, self.side, self.transport, self.dst = terminator, side, transport, dst
        self._buf = b""
        self._timer: asyncio.TimerHandle | None = None
        self._done = False

    def start(self, early: bytes) -> None:
        self.side.conns[self.transport] = self
        self.transport.set_protocol(self)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.side.config.detect_timeout, self._timed_out)
        self.data_received(early)

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        self._buf += data
        result = parse_client_hello(self._buf)
        if not isinstance(result, NeedMore):
            self._route(result)

    def eof_received(self) -> bool:
        if self._done:
            return False
        result = parse_client_hello(self._buf)
        if isinstance(result, NeedMore):
            result = NotTls("end of stream before the ClientHello was whole")
        self._route(result)
        handler = self.transport.get_protocol()
        if handler is not self and not handler.eof_received():  # type: ignore[attr-defined]
            self.transport.close()
        return True

    def _timed_out(self) -> None:
        self._timer = None
        if not self._done:
            self._route(parse_client_hello(self._buf))

    def _route(self, result: NeedMore | NotTls | ClientHello) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        early, self._buf = self._buf, b""
        self.terminator.route(self.side, self.transport, early, self.dst, result)

    # side.Conn while reading the ClientHello
    def drain(self) -> None:
        self.transport.close()

    def sweep_idle(self) -> None:
        pass

    def abort(self) -> None:
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.side.conns.get(self.transport) is self:
            self.side.conns.pop(self.transport, None)


MAX_SNI_LABELS = 64
"""Distinct `sni` label values kept per proxy; later names share SNI_OVERFLOW (a client
sending random names must not grow the metrics without bound)."""
SNI_OVERFLOW = "_other"


class MeshTlsTerminator:
    def __init__(
        self,
        holder: TlsHolder,
        *,
        handshake_timeout: float = 10.0,
        local_identity: Identity | None = None,
    ) -> None:
        self.holder = holder
        self.handshake_timeout = handshake_timeout
        self.local_identity = local_identity
        self.handshakes = 0
        self.failures: dict[str, int] = {}
        self.passthrough = 0
        self._sides: dict[tuple[int, Identity], Side] = {}
        self._sni_labels: dict[str, TlsLabels] = {}
        self.expiry = ExpiryWatch()

    def local_name(self) -> str | None:
        """The name this proxy terminates TLS for: its certificate's, else the configured one."""
        identity = self.holder.identity or self.local_identity
        return identity.name if identity is not None else None

    def take(
        self, side: Side, transport: asyncio.Transport, early: bytes, dst: Addr, stats: TcpStats
    ) -> None:
        stats.opened -= 1  # counted again under the labels of the route it takes
        _HelloPeek(self, side, transport, dst).start(early)

    def route(
        self,
        side: Side,
        transport: asyncio.Transport,
        early: bytes,
        dst: Addr,
        result: NeedMore | NotTls | ClientHello,
    ) -> None:
        """Terminate or relay a connection whose first bytes `early` parsed as `result`."""
        to_proxy = dst.port == side.config.inbound_listen_addr.port
        labels = inbound_tls_route(result, self.local_name(), to_proxy=to_proxy)
        if labels is None:
            self.terminate(side, transport, early, dst)
            return
        if isinstance(result, NotTls):
            log.debug("inbound TLS to %s relayed untouched: %s", dst, result.reason)
        if labels[0] == ("tls", "opaque"):
            labels = self._bounded_sni(labels)
        self.passthrough += 1
        stats = side.metrics.tcp_stats(side.direction, "src", str(dst), labels)
        stats.opened += 1
        relay(side, transport, early, dst, stats, labels)

    def _bounded_sni(self, labels: TlsLabels) -> TlsLabels:
        sni = labels[1][1]
        known = self._sni_labels.get(sni)
        if known is None:
            if len(self._sni_labels) >= MAX_SNI_LABELS:
                return passthru_labels(SNI_OVERFLOW)
            known = self._sni_labels[sni] = labels
        return known

    def terminate(self, side: Side, transport: asyncio.Transport, early: bytes, dst: Addr) -> None:
        loop = asyncio.get_running_loop()
        _nodelay(transport)  # TLS records written back to back must not wait for ACKs (Nagle)
        waiter: asyncio.Future[None] = loop.create_future()
        decrypted = _Decrypted(self, side, dst)
        tls = tls_protocol_for(loop)(
            loop,
            decrypted,
            self.holder.listener_context(),
            waiter,
            server_side=True,
            ssl_handshake_timeout=math.ceil(self.handshake_timeout),
        )
        decrypted.tls = cast(LostHook, tls)
        side.conns[transport] = _TlsConn(transport)
        waiter.add_done_callback(lambda f: self._handshake_done(f, side, transport))
        transport.set_protocol(tls)
        tls.connection_made(transport)
        view = memoryview(early)
        while view:
            buffer = memoryview(tls.get_buffer(len(view)))
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            tls.buffer_updated(n)
            view = view[n:]
        transport.resume_reading()

    def _handshake_done(
        self, waiter: asyncio.Future[None], side: Side, transport: asyncio.Transport
    ) -> None:
        exc = waiter.exception() if not waiter.cancelled() else None
        if isinstance(side.conns.get(transport), _TlsConn):
            side.conns.pop(transport, None)
        if exc is None and not waiter.cancelled():
            self.handshakes += 1
            return
        reason = tls_failure_reason(exc) if exc is not None else "handshake"
        self.failures[reason] = self.failures.get(reason, 0) + 1
        side.metrics.error(side.direction, f"tls_{reason}")
        log.debug("inbound TLS handshake failed: %s", exc)

    def side_for(self, side: Side, client: Identity) -> Side:
        key = (id(side), client)
        derived = self._sides.get(key)
        if derived is None:
            derived = dataclasses.replace(
                side, tls=client_labels(client), client_identity=client, mux_parent=side
            )
            derived.pool = side.pool  # one pool to the app, whoever the client is
            derived.mux_pool = side.mux_pool  # HTTP/2's too (made on first use: accept.h2_server)
            self._sides[key] = derived
        return derived

    def serve(
        self, side: Side, transport: asyncio.Transport, dst: Addr, tls: LostHook | None = None
    ) -> asyncio.Protocol:
        """Serve the decrypted `transport` as the plaintext path would, with TLS labels;
        `tls` (the TLS protocol under it) makes the expiry watch forget it when it ends."""
        client = peer_identity(transport)
        if client is None:  # cannot happen with CERT_REQUIRED; refuse rather than guess
            side.metrics.error(side.direction, "tls_no_client_id")
            transport.abort()
            return asyncio.Protocol()
        derived = self.side_for(side, client)
        forget = self.expiry.watch(
            transport, _own_not_after(self.holder), lambda: _drain(derived, transport)
        )
        if tls is not None:
            tls.on_lost = forget
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn == ALPN_OPAQUE:
            if not admit(derived, transport, dst, Protocol.OPAQUE):
                return asyncio.Protocol()
            stats = derived.metrics.tcp_stats(derived.direction, "src", str(dst), derived.tls)
            stats.opened += 1
            relay(derived, transport, b"", dst, stats, derived.tls)
            shim = _NoHalfClose(transport.get_protocol())
            transport.set_protocol(shim)
            return shim
        if alpn == ALPN_H2:  # (authorized per request, as HTTP/1 after TLS is)
            stats = derived.metrics.tcp_stats(derived.direction, "src", str(dst), derived.tls)
            stats.opened += 1
            server = h2_server(derived, dst, stats)
            server.adopt(transport)
            return server
        accepted = Accepted(derived)
        transport.set_protocol(accepted)
        accepted.connection_made(transport)
        return accepted


def _drain(side: Side, transport: asyncio.Transport) -> None:
    """A certificate of this inbound connection expired: it closes after the request in flight."""
    conn = side.conns.get(transport)
    if conn is not None:
        conn.drain()
    else:
        transport.close()
