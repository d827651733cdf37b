"""One direction of the proxy (inbound or outbound): the stack built once at start-up.

A `Side` holds the layers every accepted connection of one listener goes through:

    accept (original destination, connection limit)
      -> detect (opaque ports skip it; TLS -> `tls_terminator` if one is installed)
         -> HTTP/1: Http1Server -> resolve -> Pool -> connector
         -> other:  TunnelEnd   -> resolve -> connector

`resolve` is where service discovery plugs in (inbound goes to the forward host at the
original port; outbound to the original destination, or, with a `discovery` layer
(`proxy.discovery.outbound`), to the endpoint its balancer picks, re-picked per HTTP request,
with the endpoint's `dst_*` labels on the request metrics); `connector` is where mutual
TLS plugs in; `tls_terminator` is where inbound TLS termination plugs in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from lacewing.proxy.config import Addr, Config
from lacewing.proxy.metrics import ProxyMetrics, TcpStats
from lacewing.proxy.metrics.proxy import TLS_DISABLED, TlsLabels
from lacewing.proxy.tasks import TaskSet
from lacewing.proxy.transport import Connector

__all__ = ["Conn", "Discovery", "Side", "TlsTerminator"]


class Conn(Protocol):
    """What shutdown and the idle sweeper need from an accepted connection."""

    def drain(self) -> None:
        """Close when idle; otherwise after the work in flight."""

    def sweep_idle(self) -> None:
        """Called every half idle-timeout: close if nothing happened since the last call."""

    def abort(self) -> None: ...


class Discovery(Protocol):
    """Outbound service discovery + load balancing (`proxy.discovery.outbound`)."""

    def endpoint(self, dst: Addr) -> Addr: ...

    def begin(self, endpoint: Addr) -> None: ...

    def end(self, endpoint: Addr) -> None: ...

    def observe(self, endpoint: Addr, ok: bool, seconds: float) -> None: ...

    def labels(self, endpoint: Addr) -> TlsLabels: ...


class TlsTerminator(Protocol):
    """Inbound TLS termination (mutual TLS, next issue): takes over a detected TLS connection."""

    def take(self, side: Side, transport: asyncio.Transport, early: bytes, dst: Addr,
             stats: TcpStats) -> None: ...  # fmt: skip


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
    clock: Callable[[], float] = time.perf_counter
    tasks: TaskSet = field(default_factory=TaskSet)
    conns: dict[asyncio.BaseTransport, Conn] = field(default_factory=dict)
    closing: bool = False

    def __post_init__(self) -> None:
        from lacewing.proxy.http1.pool import Pool

        self.pool = Pool(self.config.max_idle_per_endpoint)

    def endpoint(self, dst: Addr) -> Addr:
        if self.fixed_dst is not None:
            return self.fixed_dst
        if self.discovery is not None:
            return self.discovery.endpoint(dst)
        return self.resolve(dst)

    def peer_tls(self, endpoint: Addr) -> TlsLabels:
        """The TLS labels of a connection to `endpoint`: the connector's when it originates
        mutual TLS there (`tls="true"`, `server_id`), else this side's."""
        return self.connector.labels_for(endpoint) or self.tls

    def route_labels(self, endpoint: Addr) -> TlsLabels:
        """TLS labels plus, with discovery, the endpoint's dst_* labels (one tuple: a key)."""
        if self.discovery is None:
            return self.peer_tls(endpoint)
        return self.peer_tls(endpoint) + self.discovery.labels(endpoint)
