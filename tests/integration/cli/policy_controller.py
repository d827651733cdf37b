"""The real policy controller answering a test bed's `pods/proxy` calls, on its own thread.

`lacewing check` asks the policy pod's admin port (9990) through the API server; on the
test bed no container runs, so `ThreadedPolicy` runs what the pod would: the Kubernetes
source (real watches over HTTPS against the test bed), the policy API and the admin server
with its `/v1/inbound-probe`, on a private event loop in a daemon thread, and tells the test
bed that every `lacewing-policy` pod's port 9990 lives there. `stop()` stops them and points
the route at a port nothing listens on (the pod stops answering).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tests.support.kubeapi import KubeAPI

from lacewing.controller.admin import AdminServer
from lacewing.controller.policy import Hub, KubernetesSource, PolicyServer
from lacewing.core.policy_index import PolicyConfig
from lacewing.install import sidecar
from lacewing.install.render import COMPONENT_LABEL
from lacewing.k8s.watch import Backoff, KindWatch, connect_async


class ThreadedPolicy:
    def __init__(self, api: KubeAPI, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._servers: list[PolicyServer | AdminServer] = []

    def pods(self) -> list[str]:
        return [
            p["metadata"]["name"]
            for p in self.api.list("v1", "Pod", self.namespace)
            if p["metadata"].get("labels", {}).get(COMPONENT_LABEL) == "policy"
        ]

    async def _start(self) -> int:
        client = connect_async(str(self.api.kubeconfig))
        watches = {
            kind: KindWatch(client, kind, backoff=Backoff(first=0.05, cap=0.2))
            for kind in (*KubernetesSource.KINDS, *KubernetesSource.ROUTE_KINDS)
        }
        hub = Hub()
        source = KubernetesSource(watches, hub.publish, PolicyConfig())
        api = PolicyServer(hub, "127.0.0.1", 0)
        admin = AdminServer("127.0.0.1", 0, [api])
        await api.start()
        await admin.start()
        self._servers = [admin, api]

        async def run() -> None:
            try:
                await source.run()
            finally:
                await client.close()

        self._task = asyncio.create_task(run(), name="test-policy-source")
        async with asyncio.timeout(10):  # as the pod: ready once it compiled a first index
            while hub.index is None:
                await asyncio.sleep(0.02)
        return admin.bound_port

    def start(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="policy", daemon=True)
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), loop).result(15)
        for pod in self.pods():
            self.api.route_pod_proxy(
                self.namespace, pod, sidecar.CONTROLLER_ADMIN_PORT, f"http://127.0.0.1:{port}"
            )

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for server in self._servers:
            await server.stop()

    def stop(self) -> None:
        for pod in self.pods():
            self.api.route_pod_proxy(
                self.namespace, pod, sidecar.CONTROLLER_ADMIN_PORT, "http://127.0.0.1:9"
            )
        loop = self._loop
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        if loop is not None:
            loop.close()
        self._loop = self._thread = self._task = None
