"""The outbound discovery + balance layer: a logical target -> one endpoint, per request.

`OutboundDiscovery.pick(logical)` is what the outbound `Side` calls for every HTTP request (and
every opaque TCP connection). It asks the `DestinationClient` about the original destination
`ip:port` (a Service's cluster IP or a pod IP); the client keeps one stream per authority, so
after the first call this is a dictionary lookup in a `Destination`: the cached service for
that target, built once and dropped by `evict_idle` when unused for the client's idle timeout.

- no answer yet, or the destination is unknown to the mesh (`exists` false): pass through
  to the original destination unchanged (outside the mesh, or kube-proxy's job), with a
  no-op ticket;
- a Service discovery knows (`exists`) with no endpoints: `targets.Empty`, the pick of
  nowhere (the Service's `dst_*` labels, no ticket): the codecs answer 503 at once rather
  than connect to a cluster IP nothing answers behind;
- otherwise the destination's own `Balancer` (its endpoint set replaced on every update,
  keeping the statistics of endpoints that stay) takes one endpoint with power of two choices
  over peak-EWMA latency; if every endpoint is ejected, pass through as a last resort.

Each destination is one `targets.Concrete` with its own balancer and its own `targets.Endpoint`
values (labels included): two Services that select the same pod are balanced and counted
apart, as a request to `web` must never be labelled `dst_service=web-canary`. What the data
path reports back goes to the ticket inside the `Pick` (see `targets`), never to a table keyed
by address. The one thing kept per address is `identity(addr)`, the TLS identity to expect from
a pod (for the mTLS connector): it belongs to the pod whichever Service led to it.

Routes add backends by name: `routes(dst)` is the route table destination streamed with
`dst`'s endpoints (and a counter that moves when it is replaced), and
`pick_backend(authority)` picks from a backend Service named in a route, a `Destination`
of its own keyed by authority (`name.ns.svc.cluster.local:port`), built, balanced and
evicted like the others; None while its stream has not answered, `NO_ENDPOINTS` when it has
none.

`answered(dst)` / `wait(dst, timeout)` let a new connection wait (bounded) for discovery's
first answer, so its first request already carries the `dst_*` labels; `refilling(dst, wait)`
/ `wait_endpoints(dst, timeout)` let it wait the same way for a Service that has just lost
its endpoints (a rollout that took every replica away for a moment): for `wait` seconds
after it became empty; after that its requests fail fast (503) until endpoints come back,
as Linkerd's fail-fast does.

The route layer holds on to a `Destination` (`destination(dst)`, a route backend's from
`follow_backend`) instead of looking it up per request: `current(dest)` is what the lookup
would return now (the same object, refreshed when its stream has news; once a second it is
looked up again, which marks it used and follows a stream that was evicted meanwhile), and
`take(dest)` / `take_backend(dest)` are `pick` / `pick_backend` from it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from lacewing.core.discovery import Endpoint as DiscoveredEndpoint
from lacewing.core.identity import Identity, IdentityParseError, parse_identity
from lacewing.core.route_table import RouteTable
from lacewing.proxy.balance import Balancer, Unavailable
from lacewing.proxy.config import Addr
from lacewing.proxy.discovery.client import DestinationClient, Resolution
from lacewing.proxy.targets import OPAQUE, Concrete, Empty, Endpoint, Logical, Pick

__all__ = ["NO_ENDPOINTS", "Destination", "OutboundDiscovery", "dst_labels"]

Labels = tuple[tuple[str, str], ...]
NO_ENDPOINTS = Pick(Endpoint(Addr("0.0.0.0", 0)))  # a backend that exists but has no endpoints
_NOWHERE = Addr("0.0.0.0", 0)
_LABEL_ORDER = ("namespace", "service", "deployment", "statefulset", "daemonset", "pod")


def dst_labels(endpoint: DiscoveredEndpoint) -> Labels:
    """`(("dst_namespace", "shop"), ("dst_service", "web"), ...)` for an endpoint's metadata."""
    return labels_of(endpoint.labels)


def labels_of(known: Mapping[str, str]) -> Labels:
    """The `dst_*` labels of metadata `known` (an endpoint's, or an empty Service's own)."""
    ordered = [k for k in _LABEL_ORDER if k in known]
    ordered += sorted(k for k in known if k not in _LABEL_ORDER)
    return tuple((f"dst_{k}", known[k]) for k in ordered)


def _identity(text: str | None) -> Identity | None:
    if not text:
        return None
    try:
        return parse_identity(text)
    except IdentityParseError:
        return None


_K = TypeVar("_K", Addr, str)


class Destination:
    """The cached service of one original destination (or route backend): its stream,
    balancer and endpoints, and where it is cached (`home[key]`), to be found again."""

    __slots__ = ("authority", "balancer", "by_key", "concrete", "dst", "empty", "empty_since",
                 "home", "key", "last_used", "passthrough", "resolution",
                 "version")  # fmt: skip

    def __init__(self, resolution: Resolution, balancer: Balancer[tuple[str, int]], dst: Addr,
                 now: float, home: dict[Any, Destination], key: Addr | str,
                 authority: str | None) -> None:  # fmt: skip
        self.resolution, self.balancer = resolution, balancer
        self.concrete = Concrete(resolution.authority)
        self.dst, self.passthrough = dst, Pick(Endpoint(dst))
        self.empty: Empty | None = None  # a known Service with no endpoints: `take`'s answer
        self.empty_since = 0.0  # when it last became empty
        self.version = -1
        self.last_used = now
        self.by_key: dict[tuple[str, int], Endpoint] = {}
        self.home, self.key, self.authority = home, key, authority


class OutboundDiscovery:
    def __init__(
        self,
        client: DestinationClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.client, self.clock = client, clock
        self.rng = rng or random.Random()
        self._dests: dict[Addr, Destination] = {}
        self._backends: dict[str, Destination] = {}  # route backends, by authority
        self._identities: dict[Addr, Identity | None] = {}  # pod address -> its identity

    def _destination(self, dst: Addr) -> Destination:
        return self._follow(self._dests, dst, None, dst)  # (str(dst) costs 0.4 us: only if new)

    def _follow(self, cache: dict[_K, Destination], key: _K, authority: str | None, dst: Addr
                ) -> Destination:  # fmt: skip
        dest = cache.get(key)
        now = self.clock()
        if dest is None:
            balancer: Balancer[tuple[str, int]] = Balancer(clock=self.clock, rng=self.rng)
            resolution = self.client.resolve(authority if authority is not None else str(dst))
            dest = cache[key] = Destination(resolution, balancer, dst, now, cache, key, authority)
        elif dest.last_used + 1.0 < now:
            # Mark it used (at most once a second), so its stream is not evicted as idle;
            # if it was evicted while unused, follow the new stream, keeping the endpoints
            # known so far until that stream answers.
            dest.last_used = now
            fresh = self.client.resolve(dest.resolution.authority)
            if fresh is not dest.resolution:
                dest.resolution, dest.version = fresh, fresh.updates
        if dest.resolution.updates != dest.version:
            self._refresh(dest)
        return dest

    def pick(self, logical: Logical) -> Pick:
        return self.take(self._destination(logical.orig_dst))

    def destination(self, dst: Addr) -> Destination:
        """The destination `pick` would pick from, to hold on to (see `current`)."""
        return self._destination(dst)

    def current(self, dest: Destination) -> Destination:
        """`dest` as looking it up again would give it now: the same object, refreshed when
        its stream has news; at most once a second it is looked up again (marking it used,
        following its stream if it was evicted), so holding it changes nothing."""
        if dest.last_used + 1.0 < self.clock():
            return self._follow(dest.home, dest.key, dest.authority, dest.dst)
        if dest.resolution.updates != dest.version:
            self._refresh(dest)
        return dest

    def take(self, dest: Destination) -> Pick:
        """`pick` from `dest` (current): an endpoint and its ticket, pass-through, or
        `Empty` (a known Service with no endpoints)."""
        if not dest.by_key:
            return dest.passthrough if dest.empty is None else dest.empty
        try:
            ticket = dest.balancer.take()
        except Unavailable:
            return dest.passthrough
        return Pick(dest.by_key[ticket.key], ticket)

    def routes(self, dst: Addr) -> tuple[RouteTable | None, int]:
        """The routes streamed for `dst` and how many times they were replaced."""
        resolution = self._destination(dst).resolution
        return resolution.routes, resolution.route_updates

    def follow_backend(self, authority: str) -> Destination:
        """Start following the backend Service `authority` (no request is counted)."""
        return self._follow(self._backends, authority, authority, _NOWHERE)

    def ejected_backends(self, authority: str) -> list[Addr]:
        """The endpoints of backend `authority` its balancer has ejected now."""
        dest = self._backends.get(authority)
        if dest is None:
            return []
        return [dest.by_key[k].addr for k in sorted(dest.balancer.ejected()) if k in dest.by_key]

    def pick_backend(self, authority: str) -> Pick | None:
        """An endpoint of the backend Service `authority`; None: not known yet;
        `NO_ENDPOINTS`: it has none (or all are ejected)."""
        return self.take_backend(self._follow(self._backends, authority, authority, _NOWHERE))

    def take_backend(self, dest: Destination) -> Pick | None:
        """`pick_backend` from a backend's `dest` (current)."""
        if dest.resolution.exists is None:
            return None
        if not dest.by_key:
            return NO_ENDPOINTS
        try:
            ticket = dest.balancer.take()
        except Unavailable:
            return NO_ENDPOINTS
        return Pick(dest.by_key[ticket.key], ticket)

    def endpoint(self, dst: Addr) -> Addr:
        """The address the next request to `dst` would go to (no request is counted)."""
        dest = self._destination(dst)
        if not dest.by_key:
            return dst
        try:
            return dest.by_key[dest.balancer.pick()].addr
        except Unavailable:
            return dst

    def endpoints(self, dst: Addr) -> list[Endpoint]:
        """The endpoints (with their labels) requests to `dst` are balanced over now."""
        return sorted(self._destination(dst).by_key.values(), key=lambda e: e.addr.port)

    def in_flight(self, endpoint: Addr) -> int:
        """Requests in flight to the pod at `endpoint`, through any destination."""
        key = (endpoint.host, endpoint.port)
        return sum(
            dest.balancer.in_flight(key) for dest in self._dests.values() if key in dest.by_key
        )

    def answered(self, dst: Addr) -> bool:
        """Has discovery answered about `dst` (so a request to it gets its labels)?"""
        return self._destination(dst).resolution.exists is not None

    async def wait(self, dst: Addr, timeout: float) -> bool:
        """Wait at most `timeout` for discovery's first answer about `dst`."""
        return await self._destination(dst).resolution.first_answer(timeout)

    def refilling(self, dst: Addr, wait: float) -> float:
        """Seconds a new connection to `dst` should still wait for endpoints: `dst` is a
        Service that has had none for less than `wait` (0: it has some, is not a Service,
        or has been empty longer, so its requests fail fast)."""
        dest = self._destination(dst)
        if dest.empty is None:
            return 0.0
        return max(0.0, dest.empty_since + wait - self.clock())

    async def wait_endpoints(self, dst: Addr, timeout: float) -> bool:
        """Wait at most `timeout` for the Service `dst` to have endpoints again."""
        resolution = self._destination(dst).resolution
        deadline = self.clock() + timeout
        while not (resolution.exists and resolution.endpoints):
            left = deadline - self.clock()
            if left <= 0 or not await resolution.changed(left):
                return False
        return True

    def _refresh(self, dest: Destination) -> None:
        resolution = dest.resolution
        dest.version = resolution.updates
        endpoints = resolution.endpoints if resolution.exists else {}
        dest.balancer.update({key: ep.weight for key, ep in endpoints.items()})
        was_empty, dest.empty = dest.empty is not None, None
        if resolution.exists and not endpoints:
            if not was_empty:
                dest.empty_since = self.clock()
            known = dict(resolution.labels)
            labels = labels_of(known)
            name = known.get("service") or resolution.authority
            dest.empty = Empty(Endpoint(dest.dst, None, None, labels, dest.concrete),
                               f"service {name} has no endpoints")  # fmt: skip
        before = dest.by_key
        dest.by_key = {}
        for key, ep in endpoints.items():
            addr = Addr(ep.address, ep.port)
            identity = _identity(ep.identity)
            target = Endpoint(addr, identity, OPAQUE if ep.opaque else None, dst_labels(ep),
                              dest.concrete)  # fmt: skip
            old = before.get(key)
            dest.by_key[key] = old if old == target else target  # keep cached route keys
            self._identities[addr] = identity

    def evict_idle(self, idle: float) -> int:
        """Forget destinations unused for `idle` seconds (and identities no one announces)."""
        cutoff = self.clock() - idle
        gone = [dst for dst, dest in self._dests.items() if dest.last_used < cutoff]
        for dst in gone:
            del self._dests[dst]
        unused = [a for a, dest in self._backends.items() if dest.last_used < cutoff]
        for authority in unused:
            del self._backends[authority]
        if gone or unused:
            dests = [*self._dests.values(), *self._backends.values()]
            known = {ep.addr for dest in dests for ep in dest.by_key.values()}
            for addr in [a for a in self._identities if a not in known]:
                del self._identities[addr]
        return len(gone) + len(unused)

    def identity(self, endpoint: Addr) -> Identity | None:
        """The TLS identity discovery announced for the pod at `endpoint` (None: plaintext
        or unknown). The shape of `MeshTlsConnector`'s `expected_identity`."""
        return self._identities.get(endpoint)

    async def close(self) -> None:
        await self.client.close()
