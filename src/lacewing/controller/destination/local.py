"""The local source: the local runtime's registry file, polled by modification time.

The local supervisor rewrites `/run/lacewing/local/<cluster>/registry.json` atomically
(temporary file + rename) whenever a pod's address or readiness changes. `LocalSource.run`
stats the file every `interval` seconds (0.2 s by default, well inside the one-second
budget) and, when its (mtime, size, inode) changed, reads and parses it and publishes the
`Directory` it describes. A missing file (the cluster is still coming up) publishes an empty
Directory and keeps polling; a malformed one is logged once per change and the last good
Directory stays published, so a bad write never empties every proxy's endpoints.

Next to it, `routes.json` (written by `lacewing local up` from the cluster file's HTTPRoute
documents, and replaced by `lacewing local routes`) holds the cluster's routes: a list of
HTTPRoute objects, polled the same way. They go through `routes.accept` against the
registry's Services (whose timeout / retry / failure-accrual annotations, from the cluster
file's `serviceAnnotations`, give a Service its default route, as on Kubernetes); a rejected
route is logged with its one-line reason and left out. A
missing routes file means no routes; a malformed one keeps the last good routes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from lacewing.controller.destination.directory import (
    Backend,
    Directory,
    PodInfo,
    Service,
    ServicePort,
)
from lacewing.controller.destination.routes import accept
from lacewing.core.identity import DEFAULT_TRUST_DOMAIN, Identity, IdentityParseError
from lacewing.core.registry import Registry, RegistryError
from lacewing.core.routes import ROUTE_ANNOTATIONS

__all__ = ["LocalSource", "directory_from_registry", "registry_path", "routes_path"]

log = logging.getLogger(__name__)

REGISTRY_ROOT = Path("/run/lacewing/local")


def registry_path(cluster: str, root: Path = REGISTRY_ROOT) -> Path:
    return root / cluster / "registry.json"


def routes_path(registry: Path) -> Path:
    return registry.with_name("routes.json")


def _identity(namespace: str, service_account: str, trust_domain: str) -> str | None:
    try:
        return Identity(namespace, service_account, trust_domain).name
    except IdentityParseError:
        return None


def directory_from_registry(
    registry: Registry, trust_domain: str = DEFAULT_TRUST_DOMAIN
) -> Directory:
    pods = tuple(
        PodInfo(
            name=p.name,
            namespace=p.namespace,
            ip=p.ip,
            identity=_identity(p.namespace, p.service_account, trust_domain) if p.meshed else None,
            workload_kind=p.workload.kind,
            workload_name=p.workload.name,
            service_account=p.service_account,
        )
        for p in registry.pods
    )
    services = tuple(
        Service(
            name=s.name,
            namespace=s.namespace,
            cluster_ip=s.cluster_ip or None,
            ports=tuple(ServicePort(p.port, p.target_port, p.name, p.opaque) for p in s.ports),
            backends=tuple(
                Backend(ip=p.ip, ready=p.ready, pod=p.name)
                for p in registry.endpoints(s, ready_only=False)
            ),
            annotations={k: s.annotations[k] for k in ROUTE_ANNOTATIONS if k in s.annotations},
        )
        for s in registry.services
    )
    return Directory(services, pods)


class LocalSource:
    """Publishes the registry file's Directory whenever the file changes."""

    def __init__(
        self,
        path: Path,
        publish: Callable[[Directory], None],
        *,
        trust_domain: str = DEFAULT_TRUST_DOMAIN,
        interval: float = 0.2,
    ) -> None:
        self.path, self.publish = path, publish
        self.trust_domain, self.interval = trust_domain, interval
        self._seen: tuple[int, int, int] | None = None
        self._first = True
        self.routes_file = routes_path(path)
        self._routes_seen: tuple[int, int, int] | None = None
        self._registry: Directory | None = None
        self._routes: list[dict[str, object]] = []

    def _routes_changed(self) -> bool:
        try:
            st = os.stat(self.routes_file)
        except FileNotFoundError:
            changed = self._routes_seen is not None
            self._routes_seen, self._routes = None, []
            return changed
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._routes_seen:
            return False
        self._routes_seen = stamp
        try:
            routes = json.loads(self.routes_file.read_text())
            if not isinstance(routes, list) or not all(isinstance(r, dict) for r in routes):
                raise ValueError("expected a list of HTTPRoute objects")
        except (OSError, ValueError) as exc:
            log.warning("ignoring routes %s: %s", self.routes_file, exc)
            return False
        self._routes = routes
        return True

    def _publish(self) -> None:
        directory = self._registry or Directory()
        if self._routes or any(s.annotations for s in directory.services):
            docs, verdicts = accept(self._routes, directory.services)
            for v in verdicts:
                if not v.accepted:
                    log.warning("%s %s/%s not accepted (%s): %s", v.kind, v.namespace, v.name,
                                v.reason, v.message)  # fmt: skip
            directory = Directory(directory.services, directory.pods, docs)
        self.publish(directory)

    def poll(self) -> bool:
        """Check the files once; True when a new Directory was published."""
        routes_changed = self._routes_changed()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._seen is not None or self._first or routes_changed:
                self._seen, self._first, self._registry = None, False, None
                self._publish()
                return True
            return False
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._seen:
            if routes_changed:
                self._publish()
            return routes_changed
        self._seen, self._first = stamp, False
        try:
            registry = Registry.from_dict(json.loads(self.path.read_text()))
        except (OSError, ValueError, RegistryError) as exc:
            log.warning("ignoring registry %s: %s", self.path, exc)
            if routes_changed:
                self._publish()
            return routes_changed
        self._registry = directory_from_registry(registry, self.trust_domain)
        self._publish()
        return True

    async def run(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(self.interval)
