"""The proxy's client of the destination API: one stream per authority, cached, resilient.

`DestinationClient.resolve(authority)` returns the `Resolution` for that authority, creating it
(and its streaming task, named `destination:<authority>`) on first use. The task:

1. connects to the destination server (TLS when an `ssl_context` is given: a context, or a
   function returning the current one, e.g. the proxy's renewed mTLS client context, None
   while there is no certificate yet), sends
   `GET /v1/endpoints?authority=...` and reads JSON lines (`core.discovery` events);
2. the first event of each connection *replaces* the known set (the server always starts a
   stream with the complete state), later ones are applied on top;
3. when the stream breaks, the server goes away, or nothing (not even a heartbeat) arrives for
   `read_timeout` seconds, it keeps the last known endpoints, sleeps with exponential backoff
   (0.1 s doubling to 5 s, injectable `sleep`) and reconnects: a control plane that is down
   leaves traffic flowing, and a restarted one is picked up without restarting the proxy.
   A 400 (the server cannot parse the authority) is final: the authority is unknown.
4. a ROUTES event carries the Service's HTTPRoutes whole: each is parsed again
   (`core.routes.parse_route`) and the lot becomes `routes`, a `RouteTable` (None: no
   routes). If any of them does not parse, the event is ignored and the last valid table
   stays: what the control plane sends never breaks traffic. Before a new table applies,
   the streams of the Services it sends to are opened and their first answers awaited (at
   most `warm_timeout`, 1 s), so a split to a new backend starts with its endpoints known.
   Only streams asked by address warm: those are what applications dial and routes apply
   to; a backend's own stream (by name) may carry routes too, but waiting there could wait
   on itself (a split between `web` and `web-canary` sends to `web`).
   A connection whose first endpoint event comes with no ROUTES before it has no routes.

Each `resolve` marks the resolution used; `evict_idle()` (run every `idle_timeout / 2` by the
client's sweeper task, clock injectable) cancels and forgets resolutions unused for
`idle_timeout`, so a proxy talking to many short-lived destinations holds no stale streams.
`close()` cancels every task it owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from lacewing.core.discovery import (
    DEFAULT_CLUSTER_DOMAIN,
    Endpoint,
    EndpointSet,
    NoEndpoints,
    apply,
    event_from_dict,
)
from lacewing.core.route_table import RouteTable
from lacewing.core.routes import Route, RouteError, parse_route
from lacewing.proxy.transport.stream import get_lines, within

if TYPE_CHECKING:
    from lacewing.proxy.metrics.control import ControlStats

__all__ = ["DestinationClient", "Resolution"]

log = logging.getLogger(__name__)


class Resolution:
    """What is known about one authority; updated in place by its stream."""

    def __init__(self, authority: str, now: float) -> None:
        self.authority = authority
        self.endpoints = EndpointSet()
        self.exists: bool | None = None  # None until the first answer
        # a known Service's own labels (namespace, service), sent with NO_ENDPOINTS
        self.labels: tuple[tuple[str, str], ...] = ()
        self.connected = False
        self.updates = 0
        self.routes: RouteTable | None = None
        self.route_updates = 0  # bumped whenever `routes` is replaced
        self.last_used = now
        self._answered = asyncio.Event()
        self._changed = asyncio.Event()

    async def first_answer(self, timeout: float) -> bool:
        """Wait for the first answer; False if none came within `timeout`."""
        with contextlib.suppress(TimeoutError):
            await within(self._answered.wait(), timeout)
        return self._answered.is_set()

    async def changed(self, timeout: float) -> bool:
        """Wait for the next update; False on timeout."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await within(event.wait(), timeout)
        return event.is_set()

    def endpoint_list(self) -> list[Endpoint]:
        return self.endpoints.sorted()

    def _parse_routes(self, objects: object) -> list[Route] | None:
        """The routes of a ROUTES event, or None (logged) if any of them is not valid."""
        if not isinstance(objects, list):
            log.warning("destination sent routes for %s that are not a list", self.authority)
            return None
        try:
            return [parse_route(obj) for obj in objects]
        except RouteError as exc:
            log.warning("keeping the last valid routes of %s: %s", self.authority, exc)
            return None

    def _set_routes(self, routes: list[Route]) -> None:
        self.routes = RouteTable(routes) if routes else None
        self.route_updates += 1

    @property
    def by_address(self) -> bool:
        """Asked about an IP address (what an app dials), not a Service name (a backend)."""
        host = self.authority.rpartition(":")[0].strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True

    def backends(self, routes: list[Route], cluster_domain: str) -> set[str]:
        """The authorities of the Services `routes` send to (a rule without backendRefs
        sends to its parent, which is this resolution's Service)."""
        port = self.authority.rpartition(":")[2]
        default = int(port) if port.isdigit() else None
        return {ref.authority(cluster_domain, default) for route in routes
                for rule in route.rules for ref in rule.backends}  # fmt: skip

    def _set(self, endpoints: EndpointSet, exists: bool) -> None:
        self.endpoints, self.exists = endpoints, exists
        self.updates += 1
        self._answered.set()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


class DestinationClient:
    control: ControlStats | None = None  # its `control_*` metrics (set by the proxy)

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext | None] | None = None,
        server_hostname: str | None = None,
        namespace: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        idle_timeout: float = 60.0,
        read_timeout: float = 30.0,
        backoff_first: float = 0.1,
        backoff_cap: float = 5.0,
        cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
        warm_timeout: float = 1.0,
    ) -> None:
        self.host, self.port = host, port
        self.ssl_context, self.server_hostname = ssl_context, server_hostname
        self.namespace = namespace
        self.clock, self._sleep = clock, sleep
        self.idle_timeout, self.read_timeout = idle_timeout, read_timeout
        self.backoff_first, self.backoff_cap = backoff_first, backoff_cap
        self.cluster_domain, self.warm_timeout = cluster_domain, warm_timeout
        self._cache: dict[str, tuple[Resolution, asyncio.Task[None]]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.connects = 0

    def resolve(self, authority: str) -> Resolution:
        entry = self._cache.get(authority)
        if entry is None:
            resolution = Resolution(authority, self.clock())
            task = asyncio.create_task(self._follow(resolution), name=f"destination:{authority}")
            self._cache[authority] = (resolution, task)
            if self._sweeper is None:
                self._sweeper = asyncio.create_task(self._sweep(), name="destination-sweeper")
            return resolution
        entry[0].last_used = self.clock()
        return entry[0]

    def cached(self) -> list[str]:
        return sorted(self._cache)

    async def evict_idle(self) -> list[str]:
        cutoff = self.clock() - self.idle_timeout
        gone = [a for a, (r, _) in self._cache.items() if r.last_used <= cutoff]
        tasks = [self._cache.pop(a)[1] for a in gone]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return gone

    async def close(self) -> None:
        tasks = [t for _, t in self._cache.values()]
        self._cache.clear()
        if self._sweeper is not None:
            tasks.append(self._sweeper)
            self._sweeper = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _warm(self, authorities: set[str]) -> None:
        """Open the streams of a new route table's backends and wait (at most `warm_timeout`)
        for their first answers, so the table applies with its backends' endpoints known."""
        waits = [self.resolve(a).first_answer(self.warm_timeout) for a in sorted(authorities)]
        await asyncio.gather(*waits)

    async def _sweep(self) -> None:
        while True:
            await self._sleep(self.idle_timeout / 2)
            await self.evict_idle()

    async def _follow(self, resolution: Resolution) -> None:
        delay = self.backoff_first
        while True:
            try:
                final = await self._stream(resolution)
                if final:
                    return
                delay = self.backoff_first  # the stream worked; start backoff over
            except (OSError, TimeoutError, ValueError, EOFError, asyncio.LimitOverrunError) as exc:
                log.debug("destination stream for %s broke: %s", resolution.authority, exc)
            finally:
                resolution.connected = False
            await self._sleep(delay)
            delay = min(self.backoff_cap, delay * 2)

    async def _stream(self, resolution: Resolution) -> bool:
        """One connection; True when the answer is final (no point reconnecting)."""
        query = "authority=" + quote(resolution.authority, safe="")
        if self.namespace:
            query += "&namespace=" + quote(self.namespace, safe="")
        async with get_lines(
            self.host,
            self.port,
            f"/v1/endpoints?{query}",
            ssl_context=self.ssl_context,
            server_hostname=self.server_hostname,
            timeout=self.read_timeout,
            control=self.control,
        ) as (status, reader):
            if status == b"400":
                log.warning("destination refused authority %s", resolution.authority)
                resolution._set(EndpointSet(), False)
                return True
            if status != b"200":
                raise ValueError(f"destination answered {status.decode(errors='replace')}")
            self.connects += 1
            resolution.connected = True
            first, routed = True, False
            while True:
                line = await within(reader.readline(), self.read_timeout)
                if not line:
                    raise EOFError("the destination server closed the stream")
                data = json.loads(line)
                if isinstance(data, dict) and data.get("type") == "HEARTBEAT":
                    continue
                if isinstance(data, dict) and data.get("type") == "ROUTES":
                    routed = True
                    routes = resolution._parse_routes(data.get("routes"))
                    if routes is not None:
                        if resolution.by_address:  # (routes apply to what apps dial)
                            await self._warm(resolution.backends(routes, self.cluster_domain))
                        resolution._set_routes(routes)
                    continue
                event = event_from_dict(data)
                base = EndpointSet() if first else resolution.endpoints
                if first and not routed and resolution.routes is not None:
                    resolution._set_routes([])  # this connection says: no routes
                first = False
                exists = event.exists if isinstance(event, NoEndpoints) else True
                if isinstance(event, NoEndpoints):
                    resolution.labels = event.labels
                resolution._set(apply(base, event), exists)
