"""Service discovery's domain: authorities, endpoints, endpoint sets and their change events.

A proxy asks the destination controller about an *authority*. `parse_authority` accepts the
forms a Kubernetes client would use and normalises them, so that `web:80` asked from namespace
`shop`, `web.shop:80` and `web.shop.svc.cluster.local:80` are one question:

    name[.namespace[.svc[.<cluster domain>]]]:port   -> ServiceAuthority(name, namespace, port)
    1.2.3.4:port, [::1]:port                         -> AddressAuthority(ip, port)

An `Endpoint` is one address to connect to, with what a proxy needs to reach it: its weight,
its TLS identity (None when the pod is not meshed), whether the port is opaque (no protocol
detection; balance connections, not requests) and metadata labels (namespace, service,
workload kind/name, pod) that end up on the proxy's outbound metrics.

`EndpointSet` is an immutable set keyed by (address, port); `diff(old, new)` turns two
successive sets into the events a stream carries: `Added` (new or changed endpoints, sent
whole), `Removed` (addresses that left) and `NoEndpoints` (the set became empty; `exists`
says whether the authority is known at all, so a proxy can pass unknown destinations
through, and `labels` name a known Service's namespace and name, so a proxy that answers
for it has the labels no endpoint brings). `event_to_dict` / `event_from_dict` are the
wire form, one JSON object per line:

    {"type": "ADDED", "endpoints": [{"address": "10.42.0.7", "port": 8080, ...}]}
    {"type": "REMOVED", "endpoints": [{"address": "10.42.0.7", "port": 8080}]}
    {"type": "NO_ENDPOINTS", "exists": true, "labels": {"namespace": "shop", "service": "web"}}

`apply(endpoints, event)` is the receiving side: the set after the event. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "DEFAULT_CLUSTER_DOMAIN",
    "Added",
    "AddressAuthority",
    "Authority",
    "AuthorityError",
    "Endpoint",
    "EndpointSet",
    "Event",
    "NoEndpoints",
    "Removed",
    "ServiceAuthority",
    "apply",
    "diff",
    "event_from_dict",
    "event_to_dict",
    "parse_authority",
]

DEFAULT_CLUSTER_DOMAIN: Final = "cluster.local"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class AuthorityError(ValueError):
    """The text is not an authority we can resolve; the message says which part is wrong."""


@dataclass(frozen=True)
class ServiceAuthority:
    """A Service by name: `name.namespace.svc.<domain>:port`."""

    name: str
    namespace: str
    port: int
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.{self.cluster_domain}"

    def __str__(self) -> str:
        return f"{self.fqdn}:{self.port}"


@dataclass(frozen=True)
class AddressAuthority:
    """An IP address and port: a Service's cluster IP or a pod's IP."""

    ip: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}"


Authority = ServiceAuthority | AddressAuthority


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise AuthorityError(f"{whole!r}: the port must be a number from 1 to 65535")
    return int(text)


def parse_authority(
    text: str,
    *,
    default_namespace: str | None = None,
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
) -> Authority:
    """Normalise `text` (see the module docstring); short names need `default_namespace`."""
    whole = text.strip()
    host, sep, port_text = whole.rpartition(":")
    if not sep or not host:
        raise AuthorityError(f"{whole!r}: expected HOST:PORT, for example web.shop:80")
    port = _port(port_text, whole)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return AddressAuthority(str(ipaddress.ip_address(host)), port)
    except ValueError:
        pass
    labels = host.lower().rstrip(".").split(".")
    domain = cluster_domain.split(".")
    if len(labels) >= 3 and labels[2] == "svc" and labels[3:] in ([], domain):
        labels = labels[:2]
    if len(labels) == 1:
        if default_namespace is None:
            raise AuthorityError(
                f"{whole!r}: a bare name needs a namespace; write NAME.NAMESPACE:PORT"
            )
        labels = [labels[0], default_namespace]
    if len(labels) != 2:
        raise AuthorityError(
            f"{whole!r}: not a Service name (NAME, NAME.NS, NAME.NS.svc.{cluster_domain})"
        )
    for label in labels:
        if not _DNS_LABEL.match(label):
            raise AuthorityError(f"{whole!r}: {label!r} is not a valid DNS label")
    return ServiceAuthority(labels[0], labels[1], port, cluster_domain)


@dataclass(frozen=True)
class Endpoint:
    """One address to send traffic to, and what the proxy must know to do it."""

    address: str
    port: int
    weight: int = 1
    identity: str | None = None
    opaque: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, self.port)

    def __hash__(self) -> int:
        return hash((self.address, self.port, self.weight, self.identity, self.opaque))

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "port": self.port,
            "weight": self.weight,
            "identity": self.identity,
            "opaque": self.opaque,
            "labels": dict(sorted(self.labels.items())),
        }

    @classmethod
    def from_dict(cls, data: object) -> Endpoint:
        if not isinstance(data, dict):
            raise ValueError("an endpoint must be a JSON object")
        address, port = data.get("address"), data.get("port")
        weight, identity = data.get("weight", 1), data.get("identity")
        opaque, labels = data.get("opaque", False), data.get("labels", {})
        if not isinstance(address, str) or not address:
            raise ValueError("endpoint.address: expected a non-empty string")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ValueError("endpoint.port: expected a port number")
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            raise ValueError("endpoint.weight: expected a non-negative integer")
        if identity is not None and not isinstance(identity, str):
            raise ValueError("endpoint.identity: expected a string or null")
        if not isinstance(opaque, bool):
            raise ValueError("endpoint.opaque: expected true or false")
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ValueError("endpoint.labels: expected a map of strings")
        return cls(address, port, weight, identity, opaque, dict(labels))


class EndpointSet(Mapping[tuple[str, int], Endpoint]):
    """An immutable set of endpoints keyed by (address, port)."""

    __slots__ = ("_by_key",)

    def __init__(self, endpoints: Iterable[Endpoint] = ()) -> None:
        self._by_key: dict[tuple[str, int], Endpoint] = {e.key: e for e in endpoints}

    def __getitem__(self, key: tuple[str, int]) -> Endpoint:
        return self._by_key[key]

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def __repr__(self) -> str:
        return f"EndpointSet({sorted(self._by_key)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EndpointSet):
            return NotImplemented
        return self._by_key == other._by_key

    def __hash__(self) -> int:
        return hash(frozenset(self._by_key.items()))

    def sorted(self) -> list[Endpoint]:
        return [self._by_key[k] for k in sorted(self._by_key)]


@dataclass(frozen=True)
class Added:
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True)
class Removed:
    keys: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class NoEndpoints:
    exists: bool
    # the Service's own metadata (namespace, service) when it exists: what the proxy labels
    # its own answers with while no endpoint carries labels
    labels: tuple[tuple[str, str], ...] = ()


Event = Added | Removed | NoEndpoints


def diff(old: EndpointSet | None, new: EndpointSet, *, exists: bool = True,
         labels: Mapping[str, str] | None = None) -> list[Event]:  # fmt: skip
    """The events that turn `old` (None: nothing sent yet) into `new` (`labels`: the
    Service's, carried by a NO_ENDPOINTS)."""
    if not new:
        if old is None or old:
            return [NoEndpoints(exists, tuple(sorted((labels or {}).items())))]
        return []
    before = old if old is not None else EndpointSet()
    events: list[Event] = []
    gone = tuple(k for k in sorted(before) if k not in new)
    if gone:
        events.append(Removed(gone))
    changed = tuple(e for e in new.sorted() if before.get(e.key) != e)
    if changed:
        events.append(Added(changed))
    return events


def apply(current: EndpointSet, event: Event) -> EndpointSet:
    """The set after `event`."""
    if isinstance(event, NoEndpoints):
        return EndpointSet()
    if isinstance(event, Removed):
        gone = set(event.keys)
        return EndpointSet(e for k, e in current.items() if k not in gone)
    merged = dict(current.items())
    merged.update((e.key, e) for e in event.endpoints)
    return EndpointSet(merged.values())


def event_to_dict(event: Event) -> dict[str, Any]:
    if isinstance(event, Added):
        return {"type": "ADDED", "endpoints": [e.to_dict() for e in event.endpoints]}
    if isinstance(event, Removed):
        return {"type": "REMOVED", "endpoints": [{"address": a, "port": p} for a, p in event.keys]}
    if event.labels:
        return {"type": "NO_ENDPOINTS", "exists": event.exists, "labels": dict(event.labels)}
    return {"type": "NO_ENDPOINTS", "exists": event.exists}


def event_from_dict(data: object) -> Event:
    """Parse one wire event; raises ValueError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("an event must be a JSON object")
    kind = data.get("type")
    if kind == "NO_ENDPOINTS":
        exists = data.get("exists", True)
        if not isinstance(exists, bool):
            raise ValueError("NO_ENDPOINTS.exists: expected true or false")
        labels = data.get("labels", {})
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ValueError("NO_ENDPOINTS.labels: expected an object of strings")
        return NoEndpoints(exists, tuple(sorted(labels.items())))
    items = data.get("endpoints")
    if not isinstance(items, list):
        raise ValueError(f"{kind}.endpoints: expected a list")
    if kind == "ADDED":
        return Added(tuple(Endpoint.from_dict(item) for item in items))
    if kind == "REMOVED":
        keys = []
        for item in items:
            ep = Endpoint.from_dict(item)
            keys.append(ep.key)
        return Removed(tuple(keys))
    raise ValueError(f"unknown event type {kind!r}")
