"""Start-up, privilege drop, signals and staged shutdown of the sidecar proxy.

`ProxyServer.start()` builds the two `Side` stacks once, binds the inbound, outbound and admin
listeners, then (when started as root with RUN_AS_UID set) drops privileges: setgroups([]),
setgid, setuid, in that order, after every module the data path needs is imported (they are
imported at the top of this module, and `LAZY_MODULES` just before the drop). `/ready`
answers 200 from then on.

Shutdown (SIGTERM, SIGINT or POST /shutdown) goes in stages, as uvicorn's does:
1. stop accepting (close the listeners) and ask every connection to drain: idle keep-alive
   connections close now, busy ones after their response (with `Connection: close`);
2. wait until all are gone or the grace period ends;
3. abort what is left, close pooled upstream connections, cancel owned tasks, close admin.
One idle sweeper task (every half idle-timeout) closes client connections and pooled upstream
connections that saw no traffic for a whole period, and drops discovery's per-destination
services (balancer, endpoints) unused for an idle timeout. Another (`lacewing.proxy.memory`)
returns the heap a connection peak left behind to the kernel once the peak has passed.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lacewing.core.policy import PortPolicy, default_port_policy
from lacewing.errors import RuntimeEnvError
from lacewing.proxy.accept import Accepted
from lacewing.proxy.admin import AdminServer, AdminState
from lacewing.proxy.config import Addr, Config
from lacewing.proxy.discovery import DestinationClient
from lacewing.proxy.discovery.outbound import OutboundDiscovery
from lacewing.proxy.memory import PERIOD as MEMORY_PERIOD
from lacewing.proxy.memory import AfterLoad, glibc_trim, rss_kib
from lacewing.proxy.metrics import ProxyMetrics
from lacewing.proxy.policy.client import PolicyClient
from lacewing.proxy.policy.gate import InboundGate
from lacewing.proxy.routes import Router
from lacewing.proxy.side import Side
from lacewing.proxy.tasks import TaskSet
from lacewing.proxy.transport import Connector, PlainConnector, listen_socket

if TYPE_CHECKING:
    import ssl

__all__ = ["ProxyServer", "build_sides", "drop_privileges"]

log = logging.getLogger("lacewing.proxy")


@dataclass(frozen=True)
class DestinationTls:
    """How a meshed proxy reaches a control-plane stream (destination, policy): mutual TLS
    with its own certificate.

    `context` returns the proxy's current client context (None until it has a certificate:
    the stream then waits and retries); `server_name` is the identity the controller's
    certificate must carry.
    """

    context: Callable[[], ssl.SSLContext | None]
    server_name: str


def build_sides(
    config: Config,
    metrics: ProxyMetrics,
    connector: Connector | None = None,
    clock: Callable[[], float] = time.perf_counter,
    destination_tls: DestinationTls | None = None,
    policy_tls: DestinationTls | None = None,
) -> tuple[Side, Side]:
    """The inbound and outbound stacks; `connector` is the seam for mutual TLS."""
    connector = connector or PlainConnector(config.connect_timeout)
    forward = config.inbound_forward_host
    inbound = Side("inbound", config, metrics, connector,
                   resolve=lambda dst: Addr(forward, dst.port),
                   fixed_dst=config.inbound_fixed_dst, clock=clock)  # fmt: skip
    outbound = Side("outbound", config, metrics, connector, resolve=lambda dst: dst,
                    fixed_dst=config.outbound_fixed_dst, clock=clock,
                    discovery=_discovery(config, destination_tls))  # fmt: skip
    if isinstance(outbound.discovery, OutboundDiscovery):
        outbound.router = Router(outbound.discovery, metrics.http_routes)
    policy = _policy(config, policy_tls)
    if policy is not None:
        inbound.gate = InboundGate(policy.policy)
        inbound.policy_client = policy
    return inbound, outbound


def _policy(config: Config, tls: DestinationTls | None) -> PolicyClient | None:
    """With LACEWING_PROXY_POLICY_ADDR: a stream per inbound port from the policy controller
    (over mutual TLS when the proxy is meshed, plaintext otherwise); until it answers, the
    configured default policy."""
    addr = config.policy_addr
    if addr is None:
        return None
    name, networks = config.default_inbound_policy, config.cluster_networks

    def default(port: int) -> PortPolicy:
        return default_port_policy(port, name, networks)

    return PolicyClient(
        addr.host,
        addr.port,
        namespace=config.pod_namespace,
        pod=config.pod_name,
        default=default,
        ssl_context=tls.context if tls is not None else None,
        server_hostname=tls.server_name if tls is not None else None,
    )


def _discovery(config: Config, tls: DestinationTls | None) -> OutboundDiscovery | None:
    """With LACEWING_PROXY_DESTINATION_ADDR: resolve and balance outbound through it
    (over mutual TLS when the proxy is meshed, plaintext otherwise)."""
    addr = config.destination_addr
    if addr is None:
        return None
    if tls is None:
        return OutboundDiscovery(DestinationClient(addr.host, addr.port))
    client = DestinationClient(
        addr.host, addr.port, ssl_context=tls.context, server_hostname=tls.server_name
    )
    return OutboundDiscovery(client)


# Imported lazily (on the first connection that needs them) by a proxy that starts as the
# user it runs as, as a sidecar does; imported before the drop by one that starts as root and
# drops privileges (the local runtime), since the unprivileged user may not be able to read
# the interpreter's files (a Python under /root, say). `encodings.idna`: `ssl` encodes every
# TLS client connection's server_hostname with it (identity, destination, policy, mTLS to peers);
# the listeners no longer load it at start-up (`transport.listen`).
LAZY_MODULES = (
    "lacewing.proxy.h2.server",
    "lacewing.proxy.h2.client",
    "lacewing.proxy.h2.pool",
    "encodings.idna",
)


def drop_privileges(uid: int | None, gid: int | None) -> bool:
    """Become `uid`/`gid` if we are root and asked to; True if we dropped."""
    if uid is None or os.geteuid() != 0:
        return False
    gid = uid if gid is None else gid
    for module in LAZY_MODULES:
        importlib.import_module(module)
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        raise RuntimeEnvError(f"could not drop privileges to uid {uid}: {exc}") from None
    return True


class ProxyServer:
    def __init__(self, config: Config, *, connector: Connector | None = None,
                 clock: Callable[[], float] = time.perf_counter,
                 destination_tls: DestinationTls | None = None,
                 policy_tls: DestinationTls | None = None) -> None:  # fmt: skip
        self.config = config
        self.metrics = ProxyMetrics()
        self.sides = build_sides(config, self.metrics, connector, clock, destination_tls,
                                 policy_tls)  # fmt: skip
        discovery, policy = self.sides[1].discovery, self.sides[0].policy_client
        clients: list[DestinationClient | PolicyClient] = []
        if isinstance(discovery, OutboundDiscovery):
            clients.append(discovery.client)
        if isinstance(policy, PolicyClient):
            clients.append(policy)
        for client in clients:  # their control_* metrics, by the address each dials
            client.control = self.metrics.control.addr(f"{client.host}:{client.port}")
        self.admin = AdminServer(
            AdminState(self.metrics.render, lambda: self.ready, self.request_shutdown,
                       policy=self.policy_snapshot())
        )  # fmt: skip
        self.ready = False
        self.listeners: list[asyncio.Server] = []
        self.bound: dict[str, Addr] = {}
        self.tasks = TaskSet()
        self._stop = asyncio.Event()
        self._stopped = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        inbound, outbound = self.sides
        cfg = self.config
        try:
            for name, addr, side in (("inbound", cfg.inbound_listen_addr, inbound),
                                     ("outbound", cfg.outbound_listen_addr, outbound)):  # fmt: skip
                sock = listen_socket(addr.host, addr.port, backlog=1024)
                server = await (
                    loop.create_server(_factory(side), sock=sock, backlog=1024)
                    if sock is not None
                    else loop.create_server(
                        _factory(side), addr.host, addr.port, reuse_address=True, backlog=1024
                    )
                )
                self.listeners.append(server)
                self.bound[name] = _bound(server)
            admin = await self.admin.start(cfg.admin_listen_addr.host, cfg.admin_listen_addr.port)
            self.bound["admin"] = _bound(admin)
        except OSError as exc:
            await self._close_listeners()
            raise RuntimeEnvError(
                f"cannot listen: {exc.strerror or exc}",
                hint="is another proxy running? set LACEWING_PROXY_*_LISTEN_ADDR",
            ) from None
        release = glibc_trim()  # (ctypes: imported before the drop, like LAZY_MODULES)
        if drop_privileges(cfg.run_as_uid, cfg.run_as_gid):
            log.info("running as uid %d gid %d", os.getuid(), os.getgid())
        feed = inbound.policy_client
        if isinstance(feed, PolicyClient):  # the pod's ports: their policy before any client
            feed.prefetch(sorted(cfg.inbound_ports))
        period = max(cfg.idle_timeout / 2, 0.05)
        self.tasks.spawn(self._sweep(period), name="lacewing-idle-sweeper")
        if release is not None:
            after_load = AfterLoad(release, rss_kib)
            self.tasks.spawn(self._release_after_load(after_load), name="lacewing-after-load")
        # Start-up objects live as long as the process: keep them out of every GC pass.
        gc.freeze()
        self.ready = True
        log.info("proxy listening: %s", ", ".join(f"{k} {v}" for k, v in self.bound.items()))

    def policy_snapshot(self) -> Callable[[], object] | None:
        """The admin server's `/policy` (None: no policy controller)."""
        feed = self.sides[0].policy_client
        return feed.snapshot if isinstance(feed, PolicyClient) else None

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_shutdown)

    def request_shutdown(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Start, serve until asked to stop, then shut down in stages."""
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.shutdown()

    async def _sweep(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            for side in self.sides:
                for conn in list(side.conns.values()):
                    conn.sweep_idle()
                side.pool.sweep()
                if side.mux_pool is not None:
                    side.mux_pool.sweep()
                if side.discovery is not None:  # per-destination services unused for long
                    side.discovery.evict_idle(max(self.config.idle_timeout, 60.0))

    async def _release_after_load(self, after_load: AfterLoad) -> None:
        while True:
            await asyncio.sleep(MEMORY_PERIOD)
            after_load.observe(sum(len(side.conns) for side in self.sides))

    async def _close_listeners(self) -> None:
        for server in self.listeners:
            server.close()
        for server in self.listeners:
            await server.wait_closed()
        self.listeners.clear()

    async def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.ready = False
        log.info("shutting down: draining for up to %.1fs", self.config.shutdown_grace_period)
        for server in self.listeners:
            server.close()
        for side in self.sides:
            side.closing = True
            for conn in list(side.conns.values()):
                conn.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_grace_period
        while any(side.conns for side in self.sides) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for side in self.sides:
            for conn in list(side.conns.values()):
                conn.abort()
            side.pool.close_all()
            if side.mux_pool is not None:
                side.mux_pool.close_all()
        await asyncio.sleep(0)
        for side in self.sides:
            await side.tasks.close()
            if isinstance(side.discovery, OutboundDiscovery):
                await side.discovery.close()  # its per-destination streams
            if side.policy_client is not None:
                await side.policy_client.close()  # its per-port streams
        await self.tasks.close()
        await self._close_listeners()
        await self.admin.close()
        log.info("proxy stopped")


def _factory(side: Side) -> Callable[[], Accepted]:
    return lambda: Accepted(side)


def _bound(server: asyncio.Server) -> Addr:
    sock: socket.socket = server.sockets[0]
    host, port = sock.getsockname()[:2]
    return Addr(host, port)
