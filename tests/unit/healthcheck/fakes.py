"""An in-memory stand-in for `Cluster` (the `ClusterPort` the checks use) and a Facts factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lacewing.errors import ClusterError, ClusterUnreachable
from lacewing.healthcheck.facts import CheckOptions, ClusterPort, Facts

Obj = dict[str, Any]
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@dataclass
class FakeCluster:
    objects: list[Obj] = field(default_factory=list)
    version: tuple[int, int] = (1, 31)
    now: datetime | None = NOW
    denied: set[tuple[str, str]] = field(default_factory=set)
    dry_runs: list[Obj] = field(default_factory=list)
    calls: int = 0

    def add(self, *objs: Obj) -> FakeCluster:
        self.objects.extend(objs)
        return self

    def server_version(self) -> tuple[int, int]:
        return self.version

    def _match(self, obj: Obj, api_version: str, kind: str, namespace: str | None) -> bool:
        meta = obj.get("metadata", {})
        return (
            obj.get("apiVersion") == api_version
            and obj.get("kind") == kind
            and (namespace is None or meta.get("namespace") == namespace)
        )

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        self.calls += 1
        for obj in self.objects:
            if self._match(obj, api_version, kind, namespace) and obj["metadata"]["name"] == name:
                return obj
        return None

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        self.calls += 1
        wanted = dict(p.split("=", 1) for p in label_selector.split(",")) if label_selector else {}
        return [
            o
            for o in self.objects
            if self._match(o, api_version, kind, namespace)
            and all(o["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]

    def create(self, obj: Obj, dry_run: bool = False) -> Obj:
        if ("create", obj["kind"]) in self.denied:
            raise ClusterError(f"{obj['kind']} is forbidden: cannot create")
        self.dry_runs.append(obj)
        return obj

    def can_i(
        self, verb: str, resource: str, group: str = "", namespace: str | None = None
    ) -> bool:
        return (verb, resource) not in self.denied

    def server_now(self) -> datetime | None:
        return self.now


def make_facts(
    cluster: FakeCluster | None = None,
    *,
    rendered: list[Obj] | None = None,
    latest: str | None = "0.1.0",
    namespace: str = "lacewing",
    cli_version: str = "0.1.0",
    unreachable: bool = False,
) -> Facts:
    def connect(kubeconfig: str | None, context: str | None) -> ClusterPort:
        if unreachable:
            raise ClusterUnreachable("no kubeconfig found", hint="set KUBECONFIG")
        assert cluster is not None
        return cluster

    def fetch(url: str) -> str:
        if latest is None:
            from lacewing.errors import LacewingError

            raise LacewingError(f"cannot reach {url}: refused")
        return latest

    render: Callable[[CheckOptions], list[Obj]] = lambda options: list(rendered or [])  # noqa: E731
    return Facts(
        CheckOptions(
            namespace=namespace, cli_version=cli_version, version_url="http://127.0.0.1:9/"
        ),
        connect=connect,
        render=render,
        fetch_latest=fetch,
        now=lambda: NOW,
    )


def obj(api_version: str, kind: str, name: str, namespace: str | None = None, **rest: Any) -> Obj:
    meta: Obj = {"name": name, **rest.pop("metadata", {})}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **rest}
