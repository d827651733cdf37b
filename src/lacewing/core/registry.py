"""The local cluster's registry: which Services and Pods exist, as one JSON document.

The local runtime's supervisor is the only writer: it rewrites
`/run/lacewing/local/<cluster>/registry.json` (write to a temporary file, then rename, so a
reader never sees half a file) whenever a pod's address or readiness changes, bumping
`revision`. The destination controller's local source reads it, the way the Kubernetes source
watches Services, EndpointSlices and Pods. This module is the typed model of that file: frozen
dataclasses and `to_dict` / `from_dict`; a malformed document raises `RegistryError` naming
the field.

    {"cluster": "local", "revision": 7,
     "services": [{"name": "web", "namespace": "demo", "clusterIP": "10.43.0.10",
                   "ports": [{"name": "http", "port": 8080, "targetPort": 8080,
                              "opaque": false}],
                   "selector": {"app": "web"},
                   "annotations": {"retry.lacewing.io/http": "5xx"}}],
     "pods": [{"name": "web-0", "namespace": "demo", "ip": "10.42.0.10",
               "labels": {"app": "web"}, "serviceAccount": "web", "ready": true,
               "meshed": true, "workload": {"kind": "Deployment", "name": "web"}}]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PodEntry",
    "Registry",
    "RegistryError",
    "ServiceEntry",
    "ServicePort",
    "WorkloadRef",
]


class RegistryError(ValueError):
    """The registry document does not have the expected shape."""


def _get(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if kind is int and isinstance(value, bool):
        raise RegistryError(f"{where}.{key}: expected int")
    if not isinstance(value, kind):
        raise RegistryError(f"{where}.{key}: expected {kind.__name__}")
    return value


def _labels(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = _get(data, key, dict, where)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise RegistryError(f"{where}.{key}: expected a map of strings")
    return dict(value)


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target_port: int
    opaque: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "port": self.port,
            "targetPort": self.target_port,
            "opaque": self.opaque,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "port") -> ServicePort:
        return cls(
            name=_get(data, "name", str, where),
            port=_get(data, "port", int, where),
            target_port=_get(data, "targetPort", int, where),
            opaque=_get(data, "opaque", bool, where),
        )


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    namespace: str
    cluster_ip: str
    ports: tuple[ServicePort, ...]
    selector: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)  # as a Kubernetes Service's

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "clusterIP": self.cluster_ip,
            "ports": [p.to_dict() for p in self.ports],
            "selector": dict(self.selector),
            **({"annotations": dict(self.annotations)} if self.annotations else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "service") -> ServiceEntry:
        ports = _get(data, "ports", list, where)
        return cls(
            name=_get(data, "name", str, where),
            namespace=_get(data, "namespace", str, where),
            cluster_ip=_get(data, "clusterIP", str, where),
            ports=tuple(
                ServicePort.from_dict(_mapping(p, f"{where}.ports[{i}]"), f"{where}.ports[{i}]")
                for i, p in enumerate(ports)
            ),
            selector=_labels(data, "selector", where),
            annotations=_labels(data, "annotations", where) if "annotations" in data else {},
        )


@dataclass(frozen=True)
class WorkloadRef:
    kind: str
    name: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name}


@dataclass(frozen=True)
class PodEntry:
    name: str
    namespace: str
    ip: str
    labels: Mapping[str, str]
    service_account: str
    ready: bool
    meshed: bool
    workload: WorkloadRef

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "ip": self.ip,
            "labels": dict(self.labels),
            "serviceAccount": self.service_account,
            "ready": self.ready,
            "meshed": self.meshed,
            "workload": self.workload.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "pod") -> PodEntry:
        workload = _mapping(data.get("workload"), f"{where}.workload")
        return cls(
            name=_get(data, "name", str, where),
            namespace=_get(data, "namespace", str, where),
            ip=_get(data, "ip", str, where),
            labels=_labels(data, "labels", where),
            service_account=_get(data, "serviceAccount", str, where),
            ready=_get(data, "ready", bool, where),
            meshed=_get(data, "meshed", bool, where),
            workload=WorkloadRef(
                kind=_get(workload, "kind", str, f"{where}.workload"),
                name=_get(workload, "name", str, f"{where}.workload"),
            ),
        )

    def matches(self, selector: Mapping[str, str]) -> bool:
        return bool(selector) and all(self.labels.get(k) == v for k, v in selector.items())


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise RegistryError(f"{where}: expected a mapping")
    return value


@dataclass(frozen=True)
class Registry:
    cluster: str
    revision: int
    services: tuple[ServiceEntry, ...] = ()
    pods: tuple[PodEntry, ...] = ()

    def endpoints(self, service: ServiceEntry, *, ready_only: bool = True) -> list[PodEntry]:
        """The pods a Service selects (in the same namespace), ready ones only by default."""
        return [
            pod
            for pod in self.pods
            if pod.namespace == service.namespace
            and pod.matches(service.selector)
            and (pod.ready or not ready_only)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "revision": self.revision,
            "services": [s.to_dict() for s in self.services],
            "pods": [p.to_dict() for p in self.pods],
        }

    @classmethod
    def from_dict(cls, data: object) -> Registry:
        doc = _mapping(data, "registry")
        services = _get(doc, "services", list, "registry")
        pods = _get(doc, "pods", list, "registry")
        return cls(
            cluster=_get(doc, "cluster", str, "registry"),
            revision=_get(doc, "revision", int, "registry"),
            services=tuple(
                ServiceEntry.from_dict(_mapping(s, f"services[{i}]"), f"services[{i}]")
                for i, s in enumerate(services)
            ),
            pods=tuple(
                PodEntry.from_dict(_mapping(p, f"pods[{i}]"), f"pods[{i}]")
                for i, p in enumerate(pods)
            ),
        )
