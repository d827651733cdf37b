"""The outbound discovery + balance layer: original destination -> one endpoint, per request.

`OutboundDiscovery.endpoint(dst)` is what the outbound `Side` calls for every HTTP request (and
every opaque TCP connection). It asks the `DestinationClient` about `ip:port` (the original
destination: a Service's cluster IP or a pod IP); the client keeps one stream per authority,
so after the first call this is a dictionary lookup:

- no answer yet, or the destination is unknown to the mesh (`exists` false), or it has no
  endpoints: pass through to `dst` unchanged (outside the mesh, or kube-proxy's job);
- otherwise a `Balancer` for that destination (rebuilt when the endpoint set changes, keeping
  the statistics of endpoints that stay) picks one endpoint with power of two choices over
  peak-EWMA latency; if every endpoint is ejected, pass through to `dst` as a last resort.

The data path reports back with `observe(endpoint, ok, seconds)`: response-head latency for
HTTP, `ok=False` for connection failures, which eject the endpoint until a probe succeeds;
`begin(endpoint)` / `end(endpoint)` bracket each HTTP request, so requests in flight count in
the endpoint's load (`rtt * (pending + 1)`).
`labels(endpoint)` gives the metric labels Linkerd puts on outbound traffic (`dst_namespace`,
`dst_service`, `dst_deployment` or other workload kind, `dst_pod`), cached per endpoint, and
`identity(endpoint)` the TLS identity to expect from it (for the mTLS connector).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from lacewing.core.discovery import Endpoint
from lacewing.core.identity import Identity, IdentityParseError, parse_identity
from lacewing.proxy.balance import Balancer, Unavailable
from lacewing.proxy.config import Addr
from lacewing.proxy.discovery.client import DestinationClient, Resolution

__all__ = ["OutboundDiscovery", "dst_labels"]

Labels = tuple[tuple[str, str], ...]
_LABEL_ORDER = ("namespace", "service", "deployment", "statefulset", "daemonset", "pod")


def dst_labels(endpoint: Endpoint) -> Labels:
    """`(("dst_namespace", "shop"), ("dst_service", "web"), ...)` for an endpoint's metadata."""
    known = endpoint.labels
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


class _Destination:
    __slots__ = ("balancer", "by_key", "resolution", "version")

    def __init__(self, resolution: Resolution, balancer: Balancer[tuple[str, int]]) -> None:
        self.resolution, self.balancer = resolution, balancer
        self.version = -1
        self.by_key: dict[tuple[str, int], Addr] = {}


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
        self._dests: dict[Addr, _Destination] = {}
        self._balancers: dict[Addr, Balancer[tuple[str, int]]] = {}  # endpoint -> its balancer
        self._labels: dict[Addr, Labels] = {}
        self._identities: dict[Addr, Identity | None] = {}

    def endpoint(self, dst: Addr) -> Addr:
        dest = self._dests.get(dst)
        if dest is None:
            balancer: Balancer[tuple[str, int]] = Balancer(clock=self.clock, rng=self.rng)
            dest = self._dests[dst] = _Destination(self.client.resolve(str(dst)), balancer)
        resolution = dest.resolution
        if resolution.last_used + 1.0 < self.clock():
            # Mark it used (at most once a second), so its stream is not evicted as idle;
            # if it was evicted while unused, follow the new stream, keeping the endpoints
            # known so far until that stream answers.
            fresh = self.client.resolve(resolution.authority)
            if fresh is not resolution:
                dest.resolution, dest.version = fresh, fresh.updates
                resolution = fresh
        if resolution.updates != dest.version:
            self._refresh(dest)
        if not dest.by_key:
            return dst
        try:
            return dest.by_key[dest.balancer.pick()]
        except Unavailable:
            return dst

    def _refresh(self, dest: _Destination) -> None:
        resolution = dest.resolution
        dest.version = resolution.updates
        endpoints = resolution.endpoints if resolution.exists else {}
        dest.balancer.update({key: ep.weight for key, ep in endpoints.items()})
        before = dest.by_key
        dest.by_key = {key: Addr(ep.address, ep.port) for key, ep in endpoints.items()}
        for key, addr in before.items():  # forget endpoints that left (pods come and go)
            if key not in dest.by_key and self._balancers.get(addr) is dest.balancer:
                del self._balancers[addr], self._labels[addr], self._identities[addr]
        for key, ep in endpoints.items():
            addr = dest.by_key[key]
            self._balancers[addr] = dest.balancer
            self._labels[addr] = dst_labels(ep)
            self._identities[addr] = _identity(ep.identity)

    def in_flight(self, endpoint: Addr) -> int:
        balancer = self._balancers.get(endpoint)
        return balancer.in_flight((endpoint.host, endpoint.port)) if balancer else 0

    def begin(self, endpoint: Addr) -> None:
        """A request to `endpoint` is in flight (its load counts it until `end`)."""
        balancer = self._balancers.get(endpoint)
        if balancer is not None:
            balancer.acquire((endpoint.host, endpoint.port))

    def end(self, endpoint: Addr) -> None:
        balancer = self._balancers.get(endpoint)
        if balancer is not None:
            balancer.release((endpoint.host, endpoint.port))

    def observe(self, endpoint: Addr, ok: bool, seconds: float) -> None:
        balancer = self._balancers.get(endpoint)
        if balancer is not None:
            balancer.observe((endpoint.host, endpoint.port), ok, seconds)

    def labels(self, endpoint: Addr) -> Labels:
        return self._labels.get(endpoint, ())

    def identity(self, endpoint: Addr) -> Identity | None:
        """The TLS identity discovery announced for `endpoint` (None: plaintext or unknown).

        The shape of `MeshTlsConnector`'s `expected_identity`, so mTLS follows discovery."""
        return self._identities.get(endpoint)

    async def close(self) -> None:
        await self.client.close()
