"""The Kubernetes source: policy resources, Pods and Namespaces, reduced to a `PolicyIndex`.

`KubernetesSource.run` starts one `lacewing.k8s.watch.KindWatch` per kind (Server,
AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, Pod, Namespace; each
lists, then watches, re-lists on 410 Gone and reconnects with backoff), folds their events
into one dictionary per kind and, after every burst of events, publishes the `PolicyIndex`
they describe (`index_from_objects`, pure). Nothing is published before every kind has been
listed once, so a proxy never gets a policy compiled from half the cluster (a Server seen
before its AuthorizationPolicy would deny everything for a moment).

A resource that does not parse (`core.policy_resources.parse_resource`) is left out of the
index, as if it did not exist, and logged once with the parser's one-line reason; the
admission webhook refuses such resources up front, so this only happens when it was bypassed
(failurePolicy Ignore, or resources that predate it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Protocol

from lacewing.core.policy import PolicyError
from lacewing.core.policy_resources import (
    GROUP,
    PodPorts,
    PolicyConfig,
    PolicyIndex,
    Resource,
    parse_resource,
    pod_from_object,
)

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
    """Folds six kinds' watch events into PolicyIndexes (see the module docstring)."""

    KINDS = (*RESOURCE_KINDS, "Pod", "Namespace")

    def __init__(
        self,
        watches: Mapping[str, _Watch],
        publish: Callable[[PolicyIndex], None],
        config: PolicyConfig,
    ) -> None:
        self.watches, self.publish, self.config = watches, publish, config
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {k: {} for k in self.KINDS}
        self._synced: set[str] = set()
        self._reported: set[str] = set()

    def apply(self, event: _Event) -> bool:
        """Fold one event in; True when the index should be republished."""
        if event.type == "SYNCED":
            self._synced.add(event.kind)
        elif event.type == "DELETED":
            self.objects[event.kind].pop(event.key, None)
        else:
            obj = dict(event.object)
            if event.kind in RESOURCE_KINDS:  # list items may come without them
                obj.setdefault("apiVersion", f"{GROUP}/{POLICY_VERSION}")
                obj.setdefault("kind", event.kind)
            self.objects[event.kind][event.key] = obj
        return len(self._synced) == len(self.KINDS)

    def index(self) -> PolicyIndex:
        resources = [o for k in RESOURCE_KINDS for o in self.objects[k].values()]
        index, problems = index_from_objects(
            resources, self.objects["Pod"].values(), self.objects["Namespace"].values(), self.config
        )
        for line in set(problems) - self._reported:
            log.warning("ignoring invalid policy resource: %s", line)
        self._reported = set(problems)
        return index

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
