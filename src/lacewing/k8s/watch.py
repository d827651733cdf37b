"""A resilient watch of one Kubernetes kind, as plain-dict events (the only lightkube user here).

`KindWatch.events()` is an endless async generator of `WatchEvent`s for one kind:

1. List the kind (all namespaces or one) and remember the list's resourceVersion. The first
   list yields an ADDED per object; a later re-list yields the *difference* from what this
   watch had seen (ADDED / MODIFIED / DELETED), so a consumer never has to start over. Then a
   SYNCED event says "you now hold the complete state".
2. Watch from that resourceVersion. lightkube re-opens the stream itself when the server
   ends it normally, from the last version seen.
3. On 410 Gone (the version left the server's history window) go back to 1 at once.
   On any other failure (refused, reset, TLS, 5xx) sleep with exponential backoff (0.2 s
   doubling to 5 s, injectable `sleep`) and go back to 1, so events missed while away are
   recovered by the re-list diff.

Objects are plain dicts (`obj.to_dict()`), keyed by (namespace, name); lightkube stays in
this package, as the layering contract requires.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
from lightkube import ApiError, AsyncClient
from lightkube.core.resource import NamespacedResource
from lightkube.resources.core_v1 import Namespace, Pod, Service
from lightkube.resources.discovery_v1 import EndpointSlice

from lacewing.k8s.kubeconfig import resolve_config
from lacewing.k8s.policy_kinds import POLICY_KINDS
from lacewing.k8s.route_kinds import ROUTE_KINDS

__all__ = ["KINDS", "Backoff", "KindWatch", "WatchEvent", "connect_async"]

log = logging.getLogger(__name__)

KINDS: dict[str, Any] = {
    "Service": Service,
    "Pod": Pod,
    "EndpointSlice": EndpointSlice,
    "Namespace": Namespace,
    **POLICY_KINDS,
    **ROUTE_KINDS,
}

Obj = dict[str, Any]


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, SYNCED
    kind: str
    object: Obj

    @property
    def key(self) -> tuple[str, str]:
        return _key(self.object)


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


@dataclass
class Backoff:
    first: float = 0.2
    cap: float = 5.0
    attempt: int = 0

    def next(self) -> float:
        delay = float(min(self.cap, self.first * (2**self.attempt)))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


def connect_async(kubeconfig: str | None = None, context: str | None = None) -> AsyncClient:
    """An AsyncClient for the cluster kubectl would use (ClusterUnreachable if there is none).

    The read timeout is off: a watch is silent while nothing changes.
    """
    config = resolve_config(kubeconfig, context)
    return AsyncClient(config=config, timeout=httpx.Timeout(10.0, read=None))


class KindWatch:
    """List-then-watch of one kind with re-list on 410 and backoff on failure."""

    def __init__(
        self,
        client: AsyncClient,
        kind: str,
        *,
        namespace: str | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"cannot watch {kind!r}; known kinds: {', '.join(KINDS)}")
        self.client, self.kind, self.namespace = client, kind, namespace
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self.cache: dict[tuple[str, str], Obj] = {}
        self.relists = 0
        # Cluster-scoped kinds (Namespace) are listed without a namespace.
        namespaced = issubclass(KINDS[kind], NamespacedResource)
        self._scope = (namespace or "*") if namespaced else None

    async def _list(self) -> tuple[dict[tuple[str, str], Obj], str]:
        listing = self.client.list(KINDS[self.kind], namespace=self._scope)
        fresh: dict[tuple[str, str], Obj] = {}
        async for obj in listing:
            d = obj.to_dict()
            fresh[_key(d)] = d
        return fresh, listing.resourceVersion

    def _relist_events(self, fresh: dict[tuple[str, str], Obj]) -> list[WatchEvent]:
        events = [
            WatchEvent("DELETED", self.kind, obj)
            for key, obj in self.cache.items()
            if key not in fresh
        ]
        for key, obj in fresh.items():
            old = self.cache.get(key)
            if old is None:
                events.append(WatchEvent("ADDED", self.kind, obj))
            elif _version(old) != _version(obj):
                events.append(WatchEvent("MODIFIED", self.kind, obj))
        self.cache = fresh
        return events

    async def events(self) -> AsyncIterator[WatchEvent]:
        while True:
            try:
                fresh, version = await self._list()
                self.relists += 1
                for event in self._relist_events(fresh):
                    yield event
                yield WatchEvent("SYNCED", self.kind, {})
                self.backoff.reset()
                stream = self.client.watch(
                    KINDS[self.kind], namespace=self._scope, resource_version=version
                )
                async for kind, obj in stream:
                    d = obj.to_dict()
                    if kind == "DELETED":
                        self.cache.pop(_key(d), None)
                    elif kind in ("ADDED", "MODIFIED"):
                        self.cache[_key(d)] = d
                    else:
                        continue  # BOOKMARK
                    yield WatchEvent(kind, self.kind, d)
            except ApiError as exc:
                if exc.status.code == 410:
                    log.info("watch of %s expired (410 Gone); re-listing", self.kind)
                    continue
                delay = self.backoff.next()
                log.warning("watch of %s failed: %s; retrying in %.1fs", self.kind, exc, delay)
                await self._sleep(delay)
            except (httpx.HTTPError, OSError) as exc:
                delay = self.backoff.next()
                log.warning("watch of %s lost: %s; retrying in %.1fs", self.kind, exc, delay)
                await self._sleep(delay)


def _version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
