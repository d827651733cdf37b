"""The local cluster file: workloads in Kubernetes terms, parsed and validated.

`parse_cluster(data)` takes the YAML document (already loaded) and returns a frozen
`ClusterSpec`, or raises `UsageError` whose one line names the offending field
(`workloads[1].ports[0].port: must be a number from 1 to 65535`). `load_cluster_file(path)`
reads and parses a file. Checks are data: each field of a workload has a reader in
`_WORKLOAD_FIELDS` that validates and converts it.

    apiVersion: lacewing.io/v1alpha1
    kind: LocalCluster
    workloads:
      - name: web                 # DNS label; unique in the file; Service and Deployment name
        namespace: demo           # default "default"
        serviceAccount: web       # default: the workload's name
        replicas: 2               # default 1
        meshed: true              # default true: proxy-init + proxy beside the app
        ports:                    # each port becomes a Service port (port == targetPort)
          - {name: http, port: 8080}
          - {name: db, port: 5432, opaque: true}   # or protocol: opaque
        command: [python, -m, lacewing.local.demo.web, --port, "8080"]
        env: {GREETING: hello}
        serviceAnnotations:       # its Service's annotations, as on Kubernetes: the timeout,
          retry.lacewing.io/http: gateway-error   # retry and failure-accrual ones give the
          timeout.lacewing.io/request: 2s         # Service a default route (docs/traffic.md)
    ---
    # more YAML documents: authorization policy, as on Kubernetes (docs/policy.md)
    apiVersion: policy.lacewing.io/v1beta1
    kind: Server
    metadata: {name: web-http, namespace: demo}
    spec: {podSelector: {matchLabels: {app: web}}, port: http}

The first document is the LocalCluster. Every further one is, as on Kubernetes:
- an HTTPRoute or GRPCRoute (`gateway.networking.k8s.io/v1` or `policy.lacewing.io`) attached
  to one of its Services, checked with `core.routes.parse_route` and kept in `ClusterSpec.routes`
  (`load_routes_file` reads a file of routes only: what `lacewing local routes` sets while the
  cluster runs);
- a Server, AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication or an
  HTTPRoute whose parent is a Server (an inbound route; checked by the
  policy controller's own parser, `core.policy_resources.parse_resource`) or a Namespace, whose
  `config.lacewing.io/default-inbound-policy` annotation applies; kept in `ClusterSpec.policy`
  for the local policy controller.
A mistake in any of them is one line naming the document and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lacewing.core.inbound_routes import has_server_parent
from lacewing.core.routes import ROUTE_ANNOTATIONS, RouteError, parse_route
from lacewing.errors import UsageError

__all__ = [
    "API_VERSION",
    "KIND",
    "MAX_PODS",
    "ClusterSpec",
    "PortSpec",
    "WorkloadSpec",
    "load_cluster_file",
    "load_routes_file",
    "parse_cluster",
    "parse_routes",
]

API_VERSION = "lacewing.io/v1alpha1"
KIND = "LocalCluster"
MAX_PODS = 200
MAX_REPLICAS = 20
# Ports the sidecar itself uses inside a meshed pod.
PROXY_PORTS = frozenset({4140, 4143, 4190, 4191})
_DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HINT = "see docs/local.md for the cluster file format"
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute")


def _fail(where: str, message: str) -> UsageError:
    return UsageError(f"cluster file: {where}: {message}", hint=HINT)


@dataclass(frozen=True)
class PortSpec:
    name: str
    port: int
    opaque: bool = False


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    command: tuple[str, ...]
    namespace: str = "default"
    service_account: str = ""
    replicas: int = 1
    meshed: bool = True
    ports: tuple[PortSpec, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    service_annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        return {"app": self.name}

    @property
    def account(self) -> str:
        return self.service_account or self.name


@dataclass(frozen=True)
class ClusterSpec:
    workloads: tuple[WorkloadSpec, ...]
    routes: tuple[Mapping[str, Any], ...] = ()
    policy: tuple[Mapping[str, Any], ...] = ()  # the policy documents, as written

    def workload(self, name: str) -> WorkloadSpec:
        for workload in self.workloads:
            if workload.name == name:
                return workload
        raise UsageError(f"no workload named {name!r} in the cluster file")


def _label(value: object, where: str) -> str:
    if not isinstance(value, str) or not _DNS_LABEL.match(value):
        raise _fail(where, "must be a DNS label (lowercase letters, digits, '-'; max 32)")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "must be true or false")
    return value


def _int(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(where, f"must be a number from {low} to {high}")
    return value


def _command(value: object, where: str) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(a, str | int | float) and not isinstance(a, bool) for a in value)
    ):
        raise _fail(where, "must be a non-empty list of strings (argv)")
    return tuple(str(a) for a in value)


def _env(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _fail(where, "must be a map of NAME: value")
    env: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise _fail(f"{where}.{key}", "is not a valid environment variable name")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise _fail(f"{where}.{key}", "must be a string")
        env[key] = str(item)
    return env


_ROUTE_PREFIXES = tuple({a.partition("/")[0] + "/" for a in ROUTE_ANNOTATIONS})


def _annotations(value: object, where: str) -> dict[str, str]:
    """A Service's annotations: strings; ours (retry, timeout, balancer) must be known ones."""
    if not isinstance(value, dict):
        raise _fail(where, "must be a map of name: value")
    annotations: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise _fail(f"{where}.{key}", 'must be a string (quote numbers: "3")')
        if key.startswith(_ROUTE_PREFIXES) and key not in ROUTE_ANNOTATIONS:
            raise _fail(f"{where}.{key}", f"unknown; known: {', '.join(ROUTE_ANNOTATIONS)}")
        annotations[key] = item
    return annotations


def _port(value: object, where: str) -> PortSpec:
    if not isinstance(value, dict):
        raise _fail(where, "must be a map with name and port")
    unknown = set(value) - {"name", "port", "protocol", "opaque"}
    if unknown:
        raise _fail(f"{where}.{sorted(unknown)[0]}", "unknown field")
    port = _int(value.get("port"), f"{where}.port", 1, 65535)
    name = _label(value.get("name", f"port-{port}"), f"{where}.name")
    protocol = value.get("protocol", "http")
    if not isinstance(protocol, str) or protocol.lower() not in ("http", "tcp", "opaque"):
        raise _fail(f"{where}.protocol", "must be http, tcp or opaque")
    opaque = _bool(value.get("opaque", protocol.lower() == "opaque"), f"{where}.opaque")
    return PortSpec(name=name, port=port, opaque=opaque)


def _ports(value: object, where: str) -> tuple[PortSpec, ...]:
    if not isinstance(value, list):
        raise _fail(where, "must be a list of ports")
    ports = tuple(_port(item, f"{where}[{i}]") for i, item in enumerate(value))
    seen: set[int] = set()
    names: set[str] = set()
    for i, port in enumerate(ports):
        if port.port in seen or port.name in names:
            raise _fail(f"{where}[{i}]", "repeats a port number or name")
        seen.add(port.port)
        names.add(port.name)
    return ports


# field -> (keyword argument of WorkloadSpec, reader)
_WORKLOAD_FIELDS: dict[str, tuple[str, Callable[[object, str], Any]]] = {
    "name": ("name", _label),
    "namespace": ("namespace", _label),
    "serviceAccount": ("service_account", _label),
    "replicas": ("replicas", lambda v, w: _int(v, w, 0, MAX_REPLICAS)),
    "meshed": ("meshed", _bool),
    "ports": ("ports", _ports),
    "command": ("command", _command),
    "env": ("env", _env),
    "serviceAnnotations": ("service_annotations", _annotations),
}


def _workload(value: object, where: str) -> WorkloadSpec:
    if not isinstance(value, dict):
        raise _fail(where, "must be a map (name, command, ...)")
    for key in value:
        if key not in _WORKLOAD_FIELDS:
            raise _fail(f"{where}.{key}", "unknown field")
    for required in ("name", "command"):
        if required not in value:
            raise _fail(f"{where}.{required}", "is required")
    kwargs = {
        attr: reader(value[key], f"{where}.{key}")
        for key, (attr, reader) in _WORKLOAD_FIELDS.items()
        if key in value
    }
    workload = WorkloadSpec(**kwargs)
    if workload.service_annotations:
        _check_default_route(workload, f"{where}.serviceAnnotations")
    if workload.meshed:
        for i, port in enumerate(workload.ports):
            if port.port in PROXY_PORTS:
                raise _fail(f"{where}.ports[{i}].port", "is used by the proxy in a meshed pod")
    return workload


def _check_default_route(workload: WorkloadSpec, where: str) -> None:
    """The Service's annotations must make a valid default route (as the destination
    controller builds it: every request, to the Service itself)."""
    if not workload.ports:
        raise _fail(where, "a workload without ports has no Service to annotate")
    route = {"apiVersion": "policy.lacewing.io/v1beta1", "kind": "HTTPRoute",
             "metadata": {"name": "service-default", "namespace": workload.namespace,
                          "annotations": dict(workload.service_annotations)},
             "spec": {"parentRefs": [{"kind": "Service", "name": workload.name}],
                      "rules": [{}]}}  # fmt: skip
    try:
        parse_route(route)
    except RouteError as exc:
        field_, _, message = str(exc).partition(": ")  # "metadata.annotations[KEY]: why"
        if field_.startswith("metadata.annotations") and message:
            raise _fail(where + field_.removeprefix("metadata.annotations"), message) from None
        raise _fail(where, str(exc)) from None


def parse_cluster(data: object) -> ClusterSpec:
    """Validate a loaded cluster document; raises `UsageError` naming the first bad field."""
    if not isinstance(data, dict):
        raise _fail("(top)", "must be a map with a 'workloads' list")
    for key in data:
        if key not in ("apiVersion", "kind", "metadata", "workloads"):
            raise _fail(key, "unknown field")
    if data.get("apiVersion", API_VERSION) != API_VERSION:
        raise _fail("apiVersion", f"must be {API_VERSION}")
    if data.get("kind", KIND) != KIND:
        raise _fail("kind", f"must be {KIND}")
    items = data.get("workloads")
    if not isinstance(items, list) or not items:
        raise _fail("workloads", "must be a non-empty list")
    workloads = tuple(_workload(item, f"workloads[{i}]") for i, item in enumerate(items))
    names: set[str] = set()
    for i, workload in enumerate(workloads):
        if workload.name in names:
            raise _fail(f"workloads[{i}].name", f"{workload.name!r} is used twice")
        names.add(workload.name)
    if sum(w.replicas for w in workloads) > MAX_PODS:
        raise _fail("workloads", f"more than {MAX_PODS} pods in all")
    return ClusterSpec(workloads=workloads)


def parse_routes(documents: list[object], first: int = 1) -> tuple[dict[str, Any], ...]:
    """Check HTTPRoute and GRPCRoute documents (numbered from `first` in messages);
    `UsageError` on the first that cannot be served."""
    routes = []
    for i, doc in enumerate(documents, start=first):
        kind = doc.get("kind") if isinstance(doc, dict) else None
        where = f"document {i}"
        if kind not in ROUTE_KINDS:
            raise _fail(where, f"expected kind HTTPRoute or GRPCRoute, not {kind!r}")
        assert isinstance(doc, dict)
        name = (doc.get("metadata") or {}).get("name", "?")
        try:
            parse_route(doc)
        except RouteError as exc:
            raise _fail(f"{where} ({kind} {name})", str(exc)) from None
        routes.append(doc)
    return tuple(routes)


def _documents(path: str | Path) -> list[object]:
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read cluster file {path}: {exc.strerror}", hint=HINT) from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UsageError(f"cluster file {path} is not valid YAML{where}", hint=HINT) from None


def load_cluster_file(path: str | Path) -> ClusterSpec:
    """Read a YAML cluster file; an unreadable or invalid file is one `UsageError` line."""
    documents = _documents(path)
    if not documents:
        raise _fail("(top)", "must be a map with a 'workloads' list")
    spec = parse_cluster(documents[0])
    routes: list[dict[str, Any]] = []
    policy: list[Mapping[str, Any]] = []
    for number, doc in enumerate(documents[1:], start=2):
        if isinstance(doc, dict) and doc.get("kind") in ROUTE_KINDS:
            inbound = doc.get("kind") == "HTTPRoute" and has_server_parent(doc)
            if inbound:  # a Server's routes: inbound policy's (docs/policy.md)
                policy.append(_policy_document(doc, number))
            if not inbound or _service_parent(doc):
                routes.extend(parse_routes([doc], first=number))
        else:
            policy.append(_policy_document(doc, number))
    return ClusterSpec(workloads=spec.workloads, routes=tuple(routes), policy=tuple(policy))


def _service_parent(doc: Mapping[str, Any]) -> bool:
    refs = (doc.get("spec") or {}).get("parentRefs") or []
    return any(isinstance(r, dict) and r.get("kind") == "Service" for r in refs)


def load_routes_file(path: str | Path) -> tuple[dict[str, Any], ...]:
    """Read a YAML file of HTTPRoute documents (or none: no routes)."""
    return parse_routes(_documents(path))


POLICY_KINDS = ("Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication")


def _policy_document(doc: object, number: int) -> Mapping[str, Any]:
    """A document after the first: a policy resource or a Namespace, checked."""
    from lacewing.core.policy import PolicyError
    from lacewing.core.policy_resources import parse_resource

    where = f"document {number}"
    if not isinstance(doc, dict):
        raise _fail(where, "must be a Kubernetes object (apiVersion, kind, metadata)")
    kind = doc.get("kind")
    if kind == "Namespace":
        meta = doc.get("metadata")
        if doc.get("apiVersion") != "v1" or not isinstance(meta, dict):
            raise _fail(where, "a Namespace needs apiVersion: v1 and metadata")
        _label(meta.get("name"), f"{where} (Namespace).metadata.name")
        annotations = meta.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(v, str) for v in annotations.values()
        ):
            raise _fail(f"{where} (Namespace).metadata.annotations", "must map names to strings")
        return doc
    if kind not in POLICY_KINDS and kind != "HTTPRoute":
        kinds = ", ".join((*ROUTE_KINDS, *POLICY_KINDS))
        raise _fail(f"{where}.kind", f"{kind!r}: only {kinds} and Namespace may follow")
    meta = doc.get("metadata")
    if isinstance(meta, dict) and not meta.get("namespace"):
        doc = {**doc, "metadata": {**meta, "namespace": "default"}}  # as kubectl apply does
    try:
        parse_resource(doc)
    except PolicyError as exc:
        raise UsageError(f"cluster file: {where}: {exc}", hint="see docs/policy.md") from None
    return doc
