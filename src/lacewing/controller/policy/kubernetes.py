"""The Kubernetes source: policy resources, Pods and Namespaces, reduced to a `PolicyIndex`.

`KubernetesSource.run` starts one `lacewing.k8s.watch.KindWatch` per kind (Server,
AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, Pod, Namespace; each
lists, then watches, re-lists on 410 Gone and reconnects with backoff), folds their events
into one dictionary per kind and, after every burst of events, publishes the `PolicyIndex`
they describe (`index_from_objects`, pure). Nothing is published before every kind has been
listed once, so a proxy never gets a policy compiled from half the cluster (a Server seen
before its AuthorizationPolicy would deny everything for a moment).

HTTPRoutes of both groups (`ROUTE_KINDS`, watched when given) are folded in the same way,
but only those with a parentRef of kind Server (the others are the destination
controller's), and they do not hold back the first publication: a cluster without the
Gateway API CRDs (whose watch never lists) still gets its policy.

Each object is parsed when its event arrives. A resource that does not parse
(`core.policy_resources.parse_resource`) is left out of the index, as if it did not exist,
and logged once (when it arrives or changes) with the parser's one-line reason; the
admission webhook refuses such resources up front, so this only happens when it was bypassed
(failurePolicy Ignore, or resources that predate it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Protocol

from lacewing.core.inbound_routes import has_server_parent
from lacewing.core.policy import PolicyError
from lacewing.core.policy_index import PodPorts, PolicyConfig, PolicyIndex, pod_from_object
from lacewing.core.policy_resources import GROUP, Resource, parse_resource

__all__ = ["POLICY_VERSION", "KubernetesSource", "index_from_objects"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
POLICY_VERSION = "v1beta1"
RESOURCE_KINDS = ("Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication")


def index_from_objects(
    resources: Iterable[Obj],
    pods: Iterable[Obj],
    namespaces: Iterable[Obj],
    config: PolicyConfig,
) -> tuple[PolicyIndex, list[str]]:
    """The index these objects describe, and one line per resource left out (why)."""
    parsed: list[Resource] = []
    problems: list[str] = []
    for obj in resources:
        try:
            parsed.append(parse_resource(obj))
        except PolicyError as exc:
            problems.append(str(exc))
    pod_list: list[PodPorts] = [pod_from_object(p) for p in pods]
    ns_annotations: dict[str, Mapping[str, str]] = {}
    for ns in namespaces:
        meta = ns.get("metadata") or {}
        ns_annotations[str(meta.get("name") or "")] = dict(meta.get("annotations") or {})
    parsed.sort(key=lambda r: (type(r).__name__, r.namespace, r.name))
    pod_list.sort(key=lambda p: (p.namespace, p.name))
    return PolicyIndex(tuple(parsed), tuple(pod_list), ns_annotations, config), problems


class _Event(Protocol):
    type: str
    kind: str
    object: Obj

    @property
    def key(self) -> tuple[str, str]: ...


class _Watch(Protocol):
    def events(self) -> AsyncIterator[Any]: ...


class KubernetesSource:
    """Folds six kinds' watch events into PolicyIndexes (see the module docstring).

    Each object is parsed once, when its event arrives; publishing assembles the parsed
    forms, so a pod's churn does not re-parse every other object.
    """

    KINDS = (*RESOURCE_KINDS, "Pod", "Namespace")
    ROUTE_KINDS = ("HTTPRoute.gateway.networking.k8s.io", "HTTPRoute.policy.lacewing.io")

    def __init__(
        self,
        watches: Mapping[str, _Watch],
        publish: Callable[[PolicyIndex], None],
        config: PolicyConfig,
    ) -> None:
        self.watches, self.publish, self.config = watches, publish, config
        self.resources: dict[tuple[str, str, str], Resource] = {}
        self.problems: dict[tuple[str, str, str], str] = {}
        self.pods: dict[tuple[str, str], PodPorts] = {}
        self.namespaces: dict[str, Mapping[str, str]] = {}
        self._synced: set[str] = set()

    def apply(self, event: _Event) -> bool:
        """Fold one event in; True when the index should be republished."""
        if event.type == "SYNCED":
            self._synced.add(event.kind)
            return self._synced.issuperset(self.KINDS)
        deleted = event.type == "DELETED"
        if event.kind == "Pod":
            if deleted:
                self.pods.pop(event.key, None)
            else:
                self.pods[event.key] = pod_from_object(event.object)
        elif event.kind == "Namespace":
            meta = event.object.get("metadata") or {}
            name = str(meta.get("name") or "")
            if deleted:
                self.namespaces.pop(name, None)
            else:
                self.namespaces[name] = dict(meta.get("annotations") or {})
        elif event.kind in self.ROUTE_KINDS:
            self._route(event, deleted)
        else:
            self._resource(event, deleted)
        return self._synced.issuperset(self.KINDS)

    def _route(self, event: _Event, deleted: bool) -> None:
        kind, _, group = event.kind.partition(".")
        obj = dict(event.object)
        obj.setdefault("apiVersion", f"{group}/{'v1' if group != GROUP else POLICY_VERSION}")
        obj.setdefault("kind", kind)
        if not deleted and not has_server_parent(obj):
            deleted = True  # (no longer) inbound policy's: as if gone
        self._resource(event, deleted, obj)

    def _resource(self, event: _Event, deleted: bool, obj: Obj | None = None) -> None:
        key = (event.kind, *event.key)
        self.resources.pop(key, None)
        self.problems.pop(key, None)
        if deleted:
            return
        if obj is None:
            obj = dict(event.object)  # list items may come without apiVersion and kind
            obj.setdefault("apiVersion", f"{GROUP}/{POLICY_VERSION}")
            obj.setdefault("kind", event.kind)
        try:
            self.resources[key] = parse_resource(obj)
        except PolicyError as exc:
            self.problems[key] = str(exc)
            log.warning("ignoring invalid policy resource: %s", exc)

    def index(self) -> PolicyIndex:
        return PolicyIndex(
            tuple(self.resources[k] for k in sorted(self.resources)),
            tuple(self.pods[k] for k in sorted(self.pods)),
            dict(self.namespaces),
            self.config,
        )

    async def run(self) -> None:
        queue: asyncio.Queue[_Event] = asyncio.Queue()

        async def pump(watch: _Watch) -> None:
            async for event in watch.events():
                await queue.put(event)

        async with asyncio.TaskGroup() as group:
            for kind, watch in self.watches.items():
                group.create_task(pump(watch), name=f"policy-watch-{kind}")
            while True:
                dirty = self.apply(await queue.get())
                while not queue.empty():  # fold a burst into one publication
                    dirty = self.apply(queue.get_nowait()) or dirty
                if dirty:
                    self.publish(self.index())
