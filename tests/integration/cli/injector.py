"""The real proxy-injector serving a test bed's webhook calls, on its own thread and loop.

`lacewing check` runs synchronously in the test's thread, and the test bed calls the webhook
while the check's dry-run Pod create is in flight, so the injector cannot share that thread:
`ThreadedInjector` runs `InjectorServer` (with the serving certificate from the installed
Secret, as the Deployment mounts it) on a private event loop in a daemon thread, and tells the
test bed that the `lacewing-proxy-injector` Service of `namespace` lives there. `stop()` stops
the server and removes the route (the API server's side then cannot reach the webhook).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from pathlib import Path

from tests.support.kubeapi import KubeAPI

from lacewing.controller.injector.admission import Admission
from lacewing.controller.injector.server import InjectorServer, TlsFiles
from lacewing.k8s.cluster import Cluster

SERVICE = "lacewing-proxy-injector"


class ThreadedInjector:
    def __init__(self, api: KubeAPI, namespace: str, tls_dir: Path) -> None:
        self.api, self.namespace, self.tls_dir = api, namespace, tls_dir
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: InjectorServer | None = None
        self._lookup: Cluster | None = None

    def start(self) -> None:
        with Cluster.connect(str(self.api.kubeconfig)) as cluster:
            secret = cluster.get("v1", "Secret", f"{SERVICE}-k8s-tls", self.namespace)
        assert secret is not None, "install first"
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        for key in ("tls.crt", "tls.key"):
            (self.tls_dir / key).write_bytes(base64.b64decode(secret["data"][key]))
        self._lookup = Cluster.connect(str(self.api.kubeconfig))
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="injector", daemon=True)
        self._thread.start()
        server = self._server = InjectorServer(
            Admission(self._lookup, self.namespace), TlsFiles(self.tls_dir), "127.0.0.1", 0
        )
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        base = f"https://127.0.0.1:{server.bound_port}"
        self.api.route_webhook(self.namespace, SERVICE, 443, base)

    def stop(self) -> None:
        # an unreachable webhook: the route points at a port nothing listens on
        self.api.route_webhook(self.namespace, SERVICE, 443, "https://127.0.0.1:9")
        loop, server = self._loop, self._server
        if loop is not None and server is not None:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        if loop is not None:
            loop.close()
        if self._lookup is not None:
            self._lookup.close()
        self._loop = self._thread = self._server = self._lookup = None
