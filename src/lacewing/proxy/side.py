"""One direction of the proxy (inbound or outbound): the stack built once at start-up.

A `Side` holds the layers every accepted connection of one listener goes through:

    accept (original destination, connection limit)
      -> detect (opaque ports skip it; TLS -> `tls_terminator` if one is installed)
         -> HTTP/1: Http1Server -> resolve -> Pool -> connector
         -> other:  TunnelEnd   -> resolve -> connector

`pick(logical)` is where service discovery plugs in: it turns a `targets.Logical` into a
`targets.Pick` (an `Endpoint` and the ticket that must end once). Inbound goes to the forward
host at the original port; outbound to the original destination, or, with a `discovery` layer
(`proxy.discovery.outbound`), to the endpoint its balancer picks, re-picked per HTTP request,
with the endpoint's `dst_*` labels on the request metrics. Without discovery the pick is one
cached value per destination (no ticket, nothing to count). `connector` is where mutual TLS
plugs in; `tls_terminator` is where inbound TLS termination plugs in; `pool` keeps idle
upstream connections per endpoint address for every codec; `mux_pool` holds HTTP/2's
multiplexed ones. `router` is where routes plug in
(`proxy.routes.Router`): asked per HTTP request before `pick`, for destinations that have
routes, it chooses the backend (and the codec picks from it). `gate` is where inbound
authorization policy plugs in (`proxy.policy.gate.InboundGate`): asked once per connection
(after TLS, with `client_identity` known) and once per HTTP request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lacewing.core.identity import Identity
from lacewing.proxy.config import Addr, Config
from lacewing.proxy.metrics import ProxyMetrics, TcpStats
from lacewing.proxy.metrics.proxy import TLS_DISABLED, TlsLabels
from lacewing.proxy.routes import Routed, Router
from lacewing.proxy.targets import Endpoint, Logical, Pick
from lacewing.proxy.tasks import TaskSet
from lacewing.proxy.transport import Connector
from lacewing.proxy.transport.pool import Pool

__all__ = ["Conn", "Discovery", "Gate", "MuxPool", "PolicyFeed", "Side", "TlsTerminator"]


class Conn(Protocol):
    """What shutdown and the idle sweeper need from an accepted connection."""

    def drain(self) -> None:
        """Close when idle; otherwise after the work in flight."""

    def sweep_idle(self) -> None:
        """Called every half idle-timeout: close if nothing happened since the last call."""

    def abort(self) -> None: ...


class Discovery(Protocol):
    """Outbound service discovery + load balancing (`proxy.discovery.outbound`)."""

    def pick(self, logical: Logical) -> Pick: ...

    def answered(self, dst: Addr) -> bool:
        """Discovery has answered about `dst` (a request now gets its endpoint's labels)."""

    async def wait(self, dst: Addr, timeout: float) -> bool: ...

    def refilling(self, dst: Addr, wait: float) -> float:
        """Seconds a new connection to `dst` (a Service that just lost every endpoint)
        should still wait for endpoints to come back."""

    async def wait_endpoints(self, dst: Addr, timeout: float) -> bool: ...

    def evict_idle(self, idle: float) -> int: ...


class MuxPool(Protocol):
    """Multiplexed upstream connections (HTTP/2's `h2.pool.H2Pool`): shared while busy, so
    not the idle `pool`; the codec that uses them makes them, the server sweeps and closes."""

    def sweep(self) -> None: ...

    def close_all(self) -> None: ...


class Verdict(Protocol):
    @property
    def accept(self) -> bool: ...

    @property
    def http_only(self) -> bool: ...

    @property
    def decision(self) -> Decided: ...


class Decided(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def not_found(self) -> bool: ...  # per request: the Server's routes match none

    @property
    def labels(self) -> TlsLabels: ...

    @property
    def server_labels(self) -> TlsLabels: ...


class Closable(Protocol):
    async def close(self) -> None: ...


class PolicyFeed(Closable, Protocol):
    """What feeds `gate` (`proxy.policy.client.PolicyClient`): has a port's first answer come?"""

    def answered(self, port: int) -> bool: ...

    async def wait(self, port: int, timeout: float) -> bool: ...


class Gate(Protocol):
    """Inbound authorization (`proxy.policy.gate.InboundGate`)."""

    def connection(self, port: int, client_identity: str | None, client_ip: str) -> Verdict: ...

    def request(
        self,
        port: int,
        client_identity: str | None,
        client_ip: str,
        method: str,
        path: str,
        header: Callable[[str], str | None] | None = None,
    ) -> Decided: ...


class TlsTerminator(Protocol):
    """Inbound TLS termination (mutual TLS, next issue): takes over a detected TLS connection."""

    def take(self, side: Side, transport: asyncio.Transport, early: bytes, dst: Addr,
             stats: TcpStats) -> None: ...  # fmt: skip

    def terminate(self, side: Side, transport: asyncio.Transport, early: bytes,
                  dst: Addr) -> None: ...  # fmt: skip


@dataclass(eq=False)
class Side:
    direction: str
    config: Config
    metrics: ProxyMetrics
    connector: Connector
    resolve: Callable[[Addr], Addr]
    fixed_dst: Addr | None = None
    tls: TlsLabels = TLS_DISABLED
    tls_terminator: TlsTerminator | None = None
    discovery: Discovery | None = None
    gate: Gate | None = None
    client_identity: Identity | None = None  # inbound, after mutual TLS: who the client is
    policy_client: PolicyFeed | None = None  # what feeds `gate` (closed at shutdown)
    clock: Callable[[], float] = time.perf_counter
    tasks: TaskSet = field(default_factory=TaskSet)
    conns: dict[asyncio.BaseTransport, Conn] = field(default_factory=dict)
    closing: bool = False
    mux_pool: MuxPool | None = None  # HTTP/2's shared connections, made by `h2.pool.pool_of`
    mux_parent: Side | None = None  # a side derived per TLS client shares this side's mux_pool
    router: Router | None = None  # outbound HTTPRoutes (`proxy.routes`), with discovery

    def __post_init__(self) -> None:
        self.pool: Pool[Any] = Pool(self.config.max_idle_per_endpoint)
        self._static: dict[Addr, Pick] = {}

    def pick(self, logical: Logical) -> Pick:
        """Where one request (or opaque connection) to `logical` goes; end the pick once."""
        if self.discovery is not None:  # (a fixed destination is resolved like any other)
            return self.discovery.pick(logical)
        dst = logical.orig_dst
        pick = self._static.get(dst)
        if pick is None:
            addr = self.fixed_dst if self.fixed_dst is not None else self.resolve(dst)
            pick = self._static[dst] = Pick(Endpoint(addr))
            if len(self._static) > 4096:  # destinations come and go: bound the cache
                self._static.clear()
        return pick

    def route_pick(
        self, logical: Logical, method: str, target: str, header: Callable[[str], str | None]
    ) -> tuple[Pick | None, Routed | None]:
        """`pick` through the route layer, for one HTTP request (`target`: path and query,
        `header(name)`: the first value of a lower-case header name). Without routes for the
        destination: `(pick(logical), None)`; with them, the rule and backend the router chose
        and a pick from that backend, or no pick when the proxy answers itself
        (`routed.error`, a redirect). Every codec asks here."""
        router = self.router
        if router is not None:
            return router.route_pick(logical, method, target, header)
        return self.pick(logical), None

    def discovering(self, dst: Addr) -> bool:
        """True while discovery has not yet answered about `dst`, or `dst` is a Service that
        lost its endpoints less than `discovery_wait` ago (a new connection waits for both)."""
        discovery = self.discovery
        return discovery is not None and (
            not discovery.answered(dst) or discovery.refilling(dst, self.config.discovery_wait) > 0
        )

    def policy_pending(self, dst: Addr) -> bool:
        """True while the policy controller has not yet answered about `dst`'s port."""
        return self.policy_client is not None and not self.policy_client.answered(dst.port)

    def client_of(self, transport: asyncio.BaseTransport) -> tuple[str | None, str]:
        """(the client's mesh identity name or None, its IP), as inbound policy asks."""
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        return (self.client_identity.name if self.client_identity else None), ip

    def peer_tls(self, endpoint: Addr) -> TlsLabels:
        """The TLS labels of a connection to `endpoint`: the connector's when it originates
        mutual TLS there (`tls="true"`, `server_id`), else this side's."""
        return self.connector.labels_for(endpoint) or self.tls

    def route_labels(self, endpoint: Endpoint) -> TlsLabels:
        """TLS labels plus the endpoint's dst_* labels (one tuple: a metrics key)."""
        return self.peer_tls(endpoint.addr) + endpoint.labels
