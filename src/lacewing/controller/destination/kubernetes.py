"""The Kubernetes source: Services, EndpointSlices and Pods, reduced to a `Directory`.

`KubernetesSource.run` starts one `lacewing.k8s.watch.KindWatch` per kind (each lists, then
watches from the list's resourceVersion, re-lists on 410 Gone and reconnects with backoff),
folds their events into three dictionaries, and after every batch of events publishes the
Directory those dictionaries describe (`directory_from_objects`, pure). Nothing is published
before all three kinds have been listed once, so a proxy never sees a half-known cluster.

How Kubernetes objects map (the same choices Linkerd's destination makes):
- a Service's ports come from `spec.ports`; a port is opaque when it is listed in the
  Service's `config.lacewing.io/opaque-ports` annotation ("3306,5000-5100");
- a Service's backends are the endpoints of the EndpointSlices labelled
  `kubernetes.io/service-name: <service>` in its namespace; `conditions.ready` (absent means
  ready) decides readiness; the slice's named ports give the target port per Service port;
  an endpoint whose target Pod is not (or no longer) known is left out, so a slice that lags
  behind a Pod's deletion never serves that address without its identity;
- a Pod is meshed when the injector labelled it `lacewing.io/control-plane-ns`; its identity
  is `<serviceAccount>.<ns>.serviceaccount.identity.lacewing.<trust domain>`; its workload is
  the injector's `lacewing.io/proxy-<kind>: <name>` label, otherwise its owner (a ReplicaSet
  owned by a Deployment is reported as the Deployment: the name without the template hash);
- the ports in a Pod's `config.lacewing.io/skip-inbound-ports` annotation (what its
  proxy-init leaves alone), and its proxy's own admin and tap ports (always skipped; the
  proxy serves them in plaintext, e.g. to Prometheus) are announced without identity;
- a Service's timeout, retry and failure-accrual annotations (`core.routes.ROUTE_ANNOTATIONS`)
  are kept: they become its default route when no HTTPRoute attaches to it (`routes.accept`).

HTTPRoutes and GRPCRoutes of both groups (`ROUTE_KINDS`, watched when given) go through
`routes.accept` against the Services; they do not hold back the first publication (a
cluster without the Gateway API CRDs has no such kind to list), and every publication also
hands the verdicts to `report` (which logs rejections) and each route of every kind with
its verdict to `route_status` (`route_status.RouteStatusReporter`: writes `Accepted` /
`ResolvedRefs` per parent when they differ from the route's `status.parents`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol

from lacewing.controller.destination.directory import (
    Backend,
    Directory,
    PodInfo,
    Service,
    ServicePort,
)
from lacewing.controller.destination.route_status import service_parents
from lacewing.controller.destination.routes import Verdict, accept
from lacewing.core.identity import DEFAULT_TRUST_DOMAIN, Identity, IdentityParseError
from lacewing.core.inbound_routes import has_server_parent
from lacewing.core.routes import ROUTE_ANNOTATIONS

__all__ = ["KubernetesSource", "directory_from_objects", "parse_port_ranges"]

Obj = dict[str, Any]
OPAQUE_ANNOTATION = "config.lacewing.io/opaque-ports"
SKIP_INBOUND_ANNOTATION = "config.lacewing.io/skip-inbound-ports"
PROXY_CONTAINER = "lacewing-proxy"
PROXY_OWN_PORTS = ("lacewing-admin", "lacewing-tap")  # the proxy serves them in plaintext
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MESHED_LABEL = "lacewing.io/control-plane-ns"
WORKLOAD_LABEL_PREFIX = "lacewing.io/proxy-"
_WORKLOAD_KINDS = {
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "daemonset": "DaemonSet",
    "replicaset": "ReplicaSet",
    "job": "Job",
    "cronjob": "CronJob",
}


def parse_port_ranges(text: str) -> frozenset[int]:
    """`"3306,5000-5002"` -> {3306, 5000, 5001, 5002}; unparsable parts are ignored."""
    ports: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            continue
        first, last = int(low), int(high or low)
        if 0 < first <= last < 65536 and last - first < 65536:
            ports.update(range(first, last + 1))
    return frozenset(ports)


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _name(obj: Obj) -> tuple[str, str]:
    meta = _meta(obj)
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _pod_info(pod: Obj, trust_domain: str) -> PodInfo | None:
    meta, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    ip = status.get("podIP")
    if not ip:
        return None
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    labels = meta.get("labels") or {}
    identity = None
    sa = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
    if MESHED_LABEL in labels:
        with contextlib.suppress(IdentityParseError):
            identity = Identity(ns, sa, trust_domain).name
    kind = workload = None
    for key, value in labels.items():
        suffix = key[len(WORKLOAD_LABEL_PREFIX) :] if key.startswith(WORKLOAD_LABEL_PREFIX) else ""
        if suffix in _WORKLOAD_KINDS:
            kind, workload = _WORKLOAD_KINDS[suffix], value
            break
    if kind is None:
        for owner in meta.get("ownerReferences") or []:
            kind, workload = owner.get("kind"), owner.get("name")
            hash_label = labels.get("pod-template-hash")
            if kind == "ReplicaSet" and hash_label and workload.endswith("-" + hash_label):
                kind, workload = "Deployment", workload[: -len(hash_label) - 1]
            break
    return PodInfo(name, ns, ip, identity, kind, workload, _skipped_ports(meta, spec), sa)


def _skipped_ports(meta: Obj, spec: Obj) -> frozenset[int]:
    """The pod's skip-inbound-ports annotation, plus its proxy's admin and tap ports."""
    annotation = str((meta.get("annotations") or {}).get(SKIP_INBOUND_ANNOTATION, ""))
    skipped = set(parse_port_ranges(annotation))
    for container in spec.get("containers") or []:
        if container.get("name") != PROXY_CONTAINER:
            continue
        for port in container.get("ports") or []:
            number = port.get("containerPort")
            if port.get("name") in PROXY_OWN_PORTS and isinstance(number, int):
                skipped.add(number)
    return frozenset(skipped)


def _service(svc: Obj, slices: Iterable[Obj], pods: set[tuple[str, str]]) -> Service:
    meta, spec = _meta(svc), svc.get("spec") or {}
    opaque = parse_port_ranges(str((meta.get("annotations") or {}).get(OPAQUE_ANNOTATION, "")))
    ports = []
    for p in spec.get("ports") or []:
        target = p.get("targetPort", p.get("port"))
        number = int(target) if isinstance(target, int | str) and str(target).isdigit() else 0
        ports.append(
            ServicePort(int(p["port"]), number or int(p["port"]), p.get("name") or "", False)
        )
    ports = [
        ServicePort(p.port, p.target_port, p.name, p.port in opaque or p.target_port in opaque)
        for p in ports
    ]
    backends = []
    for s in slices:
        named = {str(p.get("name") or ""): int(p["port"]) for p in s.get("ports") or []}
        for ep in s.get("endpoints") or []:
            conditions = ep.get("conditions") or {}
            ready = conditions.get("ready") is not False
            ref = ep.get("targetRef") or {}
            if ref.get("kind") == "Pod" and (ref.get("namespace"), ref.get("name")) not in pods:
                continue  # its Pod is gone (or not seen yet): never serve it without identity
            for address in ep.get("addresses") or []:
                backends.append(Backend(address, ready, named, ref.get("name")))
    cluster_ip = spec.get("clusterIP")
    annotations = meta.get("annotations") or {}
    return Service(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        cluster_ip=cluster_ip if cluster_ip and cluster_ip != "None" else None,
        ports=tuple(ports),
        backends=tuple(backends),
        annotations={k: str(annotations[k]) for k in ROUTE_ANNOTATIONS if k in annotations},
    )


def directory_from_objects(
    services: Iterable[Obj],
    slices: Iterable[Obj],
    pods: Iterable[Obj],
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
    routes: Iterable[Obj] = (),
) -> Directory:
    return directory_and_verdicts(services, slices, pods, trust_domain, routes)[0]


def directory_and_verdicts(
    services: Iterable[Obj],
    slices: Iterable[Obj],
    pods: Iterable[Obj],
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
    routes: Iterable[Obj] = (),
) -> tuple[Directory, tuple[Verdict, ...]]:
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for s in slices:
        meta = _meta(s)
        owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if owner:
            by_service.setdefault((meta.get("namespace", ""), owner), []).append(s)
    pod_list = list(pods)
    known = {_name(pod) for pod in pod_list}
    built = tuple(_service(svc, by_service.get(_name(svc), []), known) for svc in services)
    infos = tuple(info for pod in pod_list if (info := _pod_info(pod, trust_domain)) is not None)
    docs, verdicts = accept(list(routes), built)
    return Directory(built, infos, docs), verdicts


class _Event(Protocol):
    type: str
    kind: str
    object: Obj

    @property
    def key(self) -> tuple[str, str]: ...


class _Watch(Protocol):
    def events(self) -> AsyncIterator[Any]: ...


class KubernetesSource:
    """Folds three kinds' watch events into Directories (see the module docstring)."""

    KINDS = ("Service", "EndpointSlice", "Pod")
    ROUTE_KINDS = (
        "HTTPRoute.gateway.networking.k8s.io",
        "HTTPRoute.policy.lacewing.io",
        "GRPCRoute.gateway.networking.k8s.io",
        "GRPCRoute.policy.lacewing.io",
    )

    def __init__(
        self,
        watches: dict[str, _Watch],
        publish: Callable[[Directory], None],
        *,
        trust_domain: str = DEFAULT_TRUST_DOMAIN,
        report: Callable[[tuple[Verdict, ...]], None] | None = None,
        route_status: Callable[[str, Obj, Verdict], None] | None = None,
    ) -> None:
        self.watches, self.publish, self.trust_domain = watches, publish, trust_domain
        self.report, self.route_status = report, route_status
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {
            k: {} for k in (*self.KINDS, *self.ROUTE_KINDS)
        }
        self._synced: set[str] = set()

    def apply(self, event: _Event) -> bool:
        """Fold one event in; True when the Directory should be republished."""
        if event.type == "SYNCED":
            self._synced.add(event.kind)
        elif event.type == "DELETED":
            self.objects[event.kind].pop(event.key, None)
        else:
            self.objects[event.kind][event.key] = event.object
        return self._synced.issuperset(self.KINDS)

    def directory(self) -> Directory:
        # (a route whose parents are all Servers is inbound policy's: not judged or served here)
        kinds = [(kind, obj) for kind in self.ROUTE_KINDS for obj in self.objects[kind].values()
                 if service_parents(obj) or not has_server_parent(obj)]  # fmt: skip
        routes = [obj for _, obj in kinds]
        directory, verdicts = directory_and_verdicts(
            self.objects["Service"].values(),
            self.objects["EndpointSlice"].values(),
            self.objects["Pod"].values(),
            self.trust_domain,
            routes,
        )
        if self.report is not None and verdicts:
            self.report(verdicts)
        if self.route_status is not None:  # one verdict per object, in the same order
            for (kind, obj), verdict in zip(kinds, verdicts, strict=False):  # then Services'
                self.route_status(kind, obj, verdict)
        return directory

    async def run(self) -> None:
        queue: asyncio.Queue[_Event] = asyncio.Queue()

        async def pump(watch: _Watch) -> None:
            async for event in watch.events():
                await queue.put(event)

        async with asyncio.TaskGroup() as group:
            for kind, watch in self.watches.items():
                group.create_task(pump(watch), name=f"destination-watch-{kind}")
            while True:
                dirty = self.apply(await queue.get())
                while not queue.empty():  # fold a burst into one publication
                    dirty = self.apply(queue.get_nowait()) or dirty
                if dirty:
                    self.publish(self.directory())
