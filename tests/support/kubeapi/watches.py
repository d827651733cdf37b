"""Watch plumbing: store events, and one open watch's filter and queue.

The store offers every `Event` to every open `Watch` while holding its lock. A watch
translates the event for its own view (kind, namespace, label and field selectors; an object
leaving the selection is DELETED, one entering it ADDED) and queues what it sees for the event
loop that serves the watch, with `call_soon_threadsafe`, so events keep their order even when
the write happened on another thread. `None` in the queue closes the watch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.kubeapi.resources import ResourceType
from tests.support.kubeapi.selectors import Matcher


@dataclass(frozen=True)
class Event:
    resource_version: int
    type: str  # ADDED, MODIFIED, DELETED
    rt: ResourceType
    obj: dict[str, Any]
    old: dict[str, Any] | None


class Watch:
    """One open watch: filters store events and queues them for its event loop."""

    def __init__(
        self,
        on_close: Callable[[Watch], None],
        rt: ResourceType,
        namespace: str | None,
        labels: Matcher,
        fields: Matcher,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._on_close = on_close
        self._rt = rt
        self.namespace = namespace
        self._labels = labels
        self._fields = fields
        self._loop = loop
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace and obj.get("metadata", {}).get("namespace") != self.namespace:
            return False
        return self._labels(obj) and self._fields(obj)

    def translate(self, event: Event) -> tuple[str, dict[str, Any]] | None:
        """The event this watch sees, if any (selector moves become ADDED/DELETED)."""
        if (event.rt.group, event.rt.plural) != (self._rt.group, self._rt.plural):
            return None
        now, before = self.matches(event.obj), self.matches(event.old)
        if event.type == "DELETED":
            return ("DELETED", event.obj) if now else None
        if now and before:
            return ("MODIFIED", event.obj)
        if now:
            return ("ADDED", event.obj)
        if before:
            return ("DELETED", event.obj)
        return None

    def push(self, item: tuple[str, dict[str, Any]] | None) -> None:
        """Queue an event (None closes the watch); callable from any thread."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:
            pass  # the serving loop is closed: nobody is left to read this watch

    async def next(self, timeout: float) -> tuple[str, dict[str, Any]] | bool | None:
        """The next event; None when the watch was closed; False after `timeout` seconds."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return False

    def close(self) -> None:
        self._on_close(self)
