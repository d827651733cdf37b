"""Writes objects' `status` subresource for a controller, coalesced and retried.

`StatusWriter.submit(kind, namespace, name, status)` records the status one object should
have (`kind` is a key of `watch.KINDS`, e.g. `HTTPRoute.policy.lacewing.io`) and wakes
`run()`, which sends each pending status as a JSON merge patch of `{"status": ...}` to the
object's `/status` subresource. Submissions are coalesced per object: only the newest
pending status is sent, so a burst of republications costs one request per object.

A 404 (the object, or the kind, is gone) drops the write; any other failure (refused, 5xx,
403 for want of RBAC) is logged and the write is tried again after a backoff (0.2 s
doubling to 5 s, injectable `sleep`), unless a newer status was submitted meanwhile. The
caller decides *what* to write and when a write is needed (the status it reads back through
its watch is the truth); this module only does the I/O.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2 as httpx
from lightkube import ApiError, AsyncClient
from lightkube.types import PatchType

from lacewing.k8s.watch import KINDS, Backoff

__all__ = ["StatusWriter"]

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # kind, namespace, name


class StatusWriter:
    def __init__(
        self,
        client: AsyncClient,
        *,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._pending: dict[Key, dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self.writes = 0  # statuses the API server took

    def submit(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        if kind not in KINDS or not hasattr(KINDS[kind], "Status"):
            raise ValueError(f"{kind!r} has no status subresource known here")
        self._pending[(kind, namespace, name)] = status
        self._wake.set()

    async def _write(self, key: Key, status: dict[str, Any]) -> bool:
        """True when done (written, or nothing left to write to)."""
        kind, namespace, name = key
        resource = KINDS[kind].Status
        try:
            await self.client.patch(resource, name, {"status": status}, namespace=namespace,
                                    patch_type=PatchType.MERGE)  # fmt: skip
        except ApiError as exc:
            if exc.status.code == 404:
                return True
            log.warning("could not write the status of %s %s/%s: %s", kind, namespace, name, exc)
            return False
        except (httpx.HTTPError, OSError) as exc:
            log.warning("could not write the status of %s %s/%s: %s", kind, namespace, name, exc)
            return False
        self.writes += 1
        return True

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            failed = False
            for key, status in list(self._pending.items()):
                done = await self._write(key, status)
                if self._pending.get(key) is status and done:
                    del self._pending[key]
                failed = failed or not done
            if failed:
                await self._sleep(self.backoff.next())
                self._wake.set()
            else:
                self.backoff.reset()
