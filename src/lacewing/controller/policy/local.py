"""The local source: the local runtime's registry file plus a file of policy resources.

Pods come from the local supervisor's `registry.json` (`lacewing.core.registry`): their
namespace, name and labels; their container ports are the target ports of the Services that
select them (named as the Service port is), since the local runtime declares ports on its
workloads, not on pods. Policy resources and namespace annotations come from `policy_file`
(Kubernetes YAML documents: Server, AuthorizationPolicy, MeshTLSAuthentication,
NetworkAuthentication, HTTPRoutes with a Server parent, and Namespace objects whose
`config.lacewing.io/default-inbound-policy` annotation applies), when one is given. Local
pods have no kubelet, hence no probe paths.

`LocalSource.run` stats both files every `interval` seconds (0.2 s by default, well inside
the one-second budget) and rebuilds the index when either one's (mtime, size, inode) changed.
A missing file counts as empty. A file that cannot be read or parsed is logged once per change
and the last good content of that file stays in use, so a half-edited policy file never
opens (or closes) every port at once. Invalid resources inside a good file are left out and
logged, as with the Kubernetes source.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from lacewing.controller.policy.kubernetes import RESOURCE_KINDS, index_from_objects
from lacewing.core.inbound_routes import has_server_parent
from lacewing.core.policy_index import PolicyConfig, PolicyIndex
from lacewing.core.registry import Registry, RegistryError

__all__ = ["LocalSource", "index_from_local", "pods_from_registry"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def pods_from_registry(registry: Registry) -> list[Obj]:
    """The registry's pods as minimal Pod dicts (labels, container ports from Services)."""
    ports: dict[tuple[str, str], dict[int, str]] = {}
    for service in registry.services:
        for pod in registry.endpoints(service, ready_only=False):
            mine = ports.setdefault((pod.namespace, pod.name), {})
            for p in service.ports:
                mine.setdefault(p.target_port, p.name)
    out = []
    for pod in registry.pods:
        declared = ports.get((pod.namespace, pod.name), {})
        container_ports = [
            {"containerPort": number, **({"name": name} if name else {})}
            for number, name in sorted(declared.items())
        ]
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod.name,
                    "namespace": pod.namespace,
                    "labels": dict(pod.labels),
                },
                "spec": {
                    "serviceAccountName": pod.service_account,
                    "containers": [{"name": "app", "ports": container_ports}],
                },
            }
        )
    return out


def index_from_local(
    registry: Registry | None, documents: list[Obj], config: PolicyConfig
) -> tuple[PolicyIndex, list[str]]:
    resources = [
        d
        for d in documents
        if d.get("kind") in RESOURCE_KINDS
        or (d.get("kind") == "HTTPRoute" and has_server_parent(d))  # the rest: outbound's
    ]
    namespaces = [d for d in documents if d.get("kind") == "Namespace"]
    pods = pods_from_registry(registry) if registry is not None else []
    return index_from_objects(resources, pods, namespaces, config)


def _load_documents(path: Path) -> list[Obj]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    if not all(isinstance(d, dict) for d in docs):
        raise ValueError("every YAML document must be a mapping")
    return docs


class _Watched:
    """One file's last seen stamp and last good content."""

    def __init__(self, path: Path | None, load: Callable[[Path], Any], empty: Any) -> None:
        self.path, self.load, self.value = path, load, empty
        self._empty = empty
        self._stamp: tuple[int, int, int] | bool | None = False  # False: never looked

    def poll(self) -> bool:
        """True when the content changed."""
        if self.path is None:
            if self._stamp is False:
                self._stamp = None
                return True
            return False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._stamp is not None:
                self._stamp, self.value = None, self._empty
                return True
            return False
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.value = self.load(self.path)
        except (OSError, ValueError, yaml.YAMLError, RegistryError) as exc:
            log.warning("ignoring %s: %s", self.path, str(exc).replace("\n", " "))
            return False
        return True


class LocalSource:
    """Publishes the PolicyIndex of the registry and the policy file whenever either changes."""

    def __init__(
        self,
        registry_file: Path,
        policy_file: Path | None,
        publish: Callable[[PolicyIndex], None],
        config: PolicyConfig,
        *,
        interval: float = 0.2,
    ) -> None:
        self.publish, self.config, self.interval = publish, config, interval
        self._registry = _Watched(
            registry_file, lambda p: Registry.from_dict(json.loads(p.read_text())), None
        )
        self._policy = _Watched(policy_file, _load_documents, [])
        self._reported: set[str] = set()

    def poll(self) -> bool:
        """Check both files once; True when a new index was published."""
        changed = self._registry.poll()
        changed = self._policy.poll() or changed
        if not changed:
            return False
        index, problems = index_from_local(self._registry.value, self._policy.value, self.config)
        for line in set(problems) - self._reported:
            log.warning("ignoring invalid policy resource: %s", line)
        self._reported = set(problems)
        self.publish(index)
        return True

    async def run(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(self.interval)
