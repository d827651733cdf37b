"""What the destination controller knows, as one immutable value, and how it answers a question.

Both sources (Kubernetes watches, the local runtime's registry file) reduce what they see to a
`Directory`: the Services (cluster IP, ports with their target port and opaque flag, and the
backends an endpoints controller selected for them) and the Pods by IP (for identity and
workload metadata, and to answer a question about a pod IP directly). A source publishes a new
Directory whenever something changes; every open stream then re-resolves its authority with
`Directory.resolve` and sends the difference (`lacewing.core.discovery.diff`). Resolving is a
dictionary lookup plus one pass over one Service's backends, so re-resolving every stream on
every change is cheap at the scale a sidecar mesh on small clusters has.

Resolution rules (`resolve` returns `(exists, EndpointSet)`):
- `name.ns.svc...:port`: the Service's *ready* backends at the target port of the Service port
  numbered `port`; unknown Service or port -> `exists=False`.
- `ip:port` equal to a Service's cluster IP: the same as asking by name.
- `ip:port` of a known pod: that pod alone (so traffic to a pod IP still gets its identity).
- anything else -> `exists=False`: the proxy passes it through unbalanced.

Routes (`routes_for`): the accepted HTTPRoutes (`controller.destination.routes.accept`) whose
parentRef names the Service, by name or cluster IP, and its port (a parentRef without a port
attaches to every port), as the JSON objects the proxy parses again.

An endpoint carries its pod's identity (so clients use mTLS) unless its port is one the pod's
proxy skips inbound (`skip-inbound-ports`): there the app answers directly, and a client's
mesh TLS would reach it instead of a proxy (the control plane's identity, destination and
webhook ports are such ports).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lacewing.core.discovery import (
    AddressAuthority,
    Authority,
    Endpoint,
    EndpointSet,
    ServiceAuthority,
)

__all__ = ["Backend", "Directory", "PodInfo", "RouteDoc", "Service", "ServicePort"]


@dataclass(frozen=True)
class PodInfo:
    """Metadata of one pod, found by IP."""

    name: str
    namespace: str
    ip: str
    identity: str | None = None  # TLS identity when the pod is meshed
    workload_kind: str | None = None  # "Deployment", "StatefulSet", ...
    workload_name: str | None = None
    # Ports its proxy does not intercept inbound: served by the app itself, so no identity.
    skip_inbound_ports: frozenset[int] = frozenset()
    service_account: str | None = None  # its `dst_serviceaccount` label (Linkerd's)


@dataclass(frozen=True)
class ServicePort:
    port: int
    target_port: int
    name: str = ""
    opaque: bool = False


@dataclass(frozen=True)
class Backend:
    """One address an endpoints controller selected for a Service."""

    ip: str
    ready: bool = True
    # Target port per Service port name, when it differs from the ServicePort's own
    # (EndpointSlices carry resolved numbers for named target ports).
    ports: Mapping[str, int] = field(default_factory=dict)
    pod: str | None = None


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    cluster_ip: str | None
    ports: tuple[ServicePort, ...]
    backends: tuple[Backend, ...] = ()
    # Its timeout / retry / failure-accrual annotations (`core.routes.ROUTE_ANNOTATIONS`).
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteDoc:
    """An accepted route: whom it attaches to, and the object as sent to proxies (JSON)."""

    namespace: str
    name: str
    parents: tuple[tuple[str, str, int | None], ...]  # (namespace, service, port or None)
    text: str


@dataclass(frozen=True)
class Directory:
    services: tuple[Service, ...] = ()
    pods: tuple[PodInfo, ...] = ()
    routes: tuple[RouteDoc, ...] = ()
    _by_name: dict[tuple[str, str], Service] = field(init=False, repr=False, compare=False)
    _by_ip: dict[str, Service] = field(init=False, repr=False, compare=False)
    _pods: dict[str, PodInfo] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {(s.namespace, s.name): s for s in self.services})
        object.__setattr__(self, "_by_ip", {s.cluster_ip: s for s in self.services if s.cluster_ip})
        object.__setattr__(self, "_pods", {p.ip: p for p in self.pods})

    def resolve(self, authority: Authority) -> tuple[bool, EndpointSet]:
        if isinstance(authority, ServiceAuthority):
            service = self._by_name.get((authority.namespace, authority.name))
            return self._service(service, authority.port)
        assert isinstance(authority, AddressAuthority)
        service = self._by_ip.get(authority.ip)
        if service is not None:
            return self._service(service, authority.port)
        pod = self._pods.get(authority.ip)
        if pod is None:
            return False, EndpointSet()
        opaque = any(
            p.opaque and p.target_port == authority.port
            for s in self.services
            if s.namespace == pod.namespace
            for p in s.ports
        )
        return True, EndpointSet([self._endpoint(pod.ip, authority.port, opaque, None)])

    def labels_for(self, authority: Authority) -> dict[str, str]:
        """The Service `authority` names (by name or cluster IP) as metric labels
        (`namespace`, `service`); {} for a pod address or an unknown Service. Sent with
        NO_ENDPOINTS, so a proxy answering for an empty Service still labels it."""
        if isinstance(authority, ServiceAuthority):
            service = self._by_name.get((authority.namespace, authority.name))
        else:
            service = self._by_ip.get(authority.ip)
        if service is None:
            return {}
        return {"namespace": service.namespace, "service": service.name}

    def routes_for(self, authority: Authority) -> tuple[str, ...]:
        """The accepted routes (JSON objects) attached to the Service `authority` names,
        by name or cluster IP, and its port; () for a pod address or an unknown Service."""
        if isinstance(authority, ServiceAuthority):
            key: tuple[str, str] | None = (authority.namespace, authority.name)
        else:
            found = self._by_ip.get(authority.ip)
            key = (found.namespace, found.name) if found is not None else None
        if key is None or not self.routes:
            return ()
        port = authority.port
        return tuple(
            doc.text
            for doc in sorted(self.routes, key=lambda d: (d.namespace, d.name))
            if any((ns, name) == key and p in (None, port) for ns, name, p in doc.parents)
        )

    def _service(self, service: Service | None, port: int) -> tuple[bool, EndpointSet]:
        if service is None:
            return False, EndpointSet()
        sport = next((p for p in service.ports if p.port == port), None)
        if sport is None:
            return False, EndpointSet()
        return True, EndpointSet(
            self._endpoint(b.ip, b.ports.get(sport.name, sport.target_port), sport.opaque, service)
            for b in service.backends
            if b.ready
        )

    def _endpoint(self, ip: str, port: int, opaque: bool, service: Service | None) -> Endpoint:
        labels: dict[str, str] = {}
        if service is not None:
            labels["namespace"] = service.namespace
            labels["service"] = service.name
        pod = self._pods.get(ip)
        identity = None
        if pod is not None:
            labels["namespace"] = pod.namespace
            labels["pod"] = pod.name
            if pod.workload_kind and pod.workload_name:
                labels[pod.workload_kind.lower()] = pod.workload_name
            if pod.service_account:
                labels["serviceaccount"] = pod.service_account
            identity = None if port in pod.skip_inbound_ports else pod.identity
        return Endpoint(ip, port, identity=identity, opaque=opaque, labels=labels)
