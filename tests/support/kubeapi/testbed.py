"""`KubeAPI`: the emulator running on its own thread, plus in-process access for tests.

`start_kube_api(tmp_dir)` makes TLS material, starts an aiohttp server on 127.0.0.1 on an
ephemeral port in a daemon thread with its own event loop, and writes a kubeconfig for it.
The server reads the current `Cluster` on each request; `reset()` swaps in a fresh, seeded
cluster (namespaces default, kube-system, kube-public and kube-node-lease, the
`extension-apiserver-authentication` ConfigMap, the `kubernetes` Service, one Node) and ends
the old cluster's watches, which is how the pytest fixture hands each test an empty cluster
in about two milliseconds (a cold start, certificates included, takes some 30 ms). The
in-process methods call the same store as the HTTP layer, so an object created here is what
kubectl would see; the one difference is that deleting a Namespace in-process removes it at
once, where over HTTP it stays Terminating for `Store.namespace_grace` seconds first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.kubeapi.certs import ServingCerts, make_certs, write_kubeconfig
from tests.support.kubeapi.cluster import DEFAULT_VERSION, Cluster
from tests.support.kubeapi.errors import ApiError
from tests.support.kubeapi.kubelet import Kubelet, node_object
from tests.support.kubeapi.resources import ResourceType
from tests.support.kubeapi.server import ApiServer
from tests.support.kubeapi.webhooks import admit_pod, has_webhooks

SEED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MANAGER = "testbed"


class _ServerThread:
    """The aiohttp server on a private event loop in a daemon thread."""

    def __init__(
        self, app: web.Application, certs: ServingCerts, port: int, tick: Callable[[], None]
    ) -> None:
        self._app = app
        self._tick = tick
        self._ticker: asyncio.Task[None] | None = None
        self._certs = certs
        self._wanted_port = port
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.thread = threading.Thread(target=self._run, name="kubeapi-server", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        if not self.port:
            raise RuntimeError("the Kubernetes API emulator did not start within 10s")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
            if self._runner is not None:
                self.loop.run_until_complete(self._runner.cleanup())
            self.loop.close()
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            "127.0.0.1",
            self._wanted_port,
            ssl_context=self._certs.server_context(),
        )
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self._run_ticker(), name="kubeapi-ticker")

    async def _run_ticker(self) -> None:
        """Time-driven controller work (namespace finalization), every 50 ms."""
        while True:
            await asyncio.sleep(0.05)
            try:
                self._tick()
            except Exception:  # a bug in a controller must not stop the server
                logging.getLogger(__name__).exception("kubeapi ticker failed")

    async def _shutdown(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class KubeAPI:
    """A running emulated cluster: its URL, kubeconfig, token and in-process API."""

    def __init__(self, tmp_dir: Path, port: int = 0, kubeconfig: Path | None = None) -> None:
        self.token = secrets.token_urlsafe(24)
        self._tmp = Path(tmp_dir)
        self._certs = make_certs()
        self._generation = 0
        self.cluster = self._seeded()
        self.kubelet = Kubelet(self.cluster.store, self._admit_from_controller)
        self._server = ApiServer(lambda: self.cluster, admission=admit_pod)
        self._thread = _ServerThread(
            self._server.app, self._certs, port, lambda: self.cluster.store.finalize_due()
        )
        self._thread.start()
        self.url = f"https://127.0.0.1:{self._thread.port}"
        self.kubeconfig = write_kubeconfig(
            kubeconfig or self._tmp / "kubeconfig", self.url, self._certs.ca_pem, self.token
        )

    @property
    def ca_pem(self) -> bytes:
        return self._certs.ca_pem

    # ------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Replace the cluster with a fresh seeded one; open watches on the old one end."""
        old = self.cluster
        self.cluster = self._seeded()
        self.kubelet = Kubelet(self.cluster.store, self._admit_from_controller)
        self._generation += 1
        old.store.close()

    def close(self) -> None:
        self.cluster.store.close()
        self._thread.stop()

    def _seeded(self) -> Cluster:
        cluster = Cluster.fresh(self.token)
        store, reg = cluster.store, cluster.registry

        def put(obj: dict[str, Any]) -> None:
            rt = reg.by_kind(obj["apiVersion"], obj["kind"])
            assert rt is not None
            store.create(rt, obj["metadata"].get("namespace"), obj, manager="kube-apiserver")

        for ns in SEED_NAMESPACES:
            put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        ca = self._certs.ca_pem.decode()
        put(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "extension-apiserver-authentication",
                    "namespace": "kube-system",
                },
                "data": {
                    "client-ca-file": ca,
                    "requestheader-client-ca-file": ca,
                    "requestheader-allowed-names": '["front-proxy-client"]',
                    "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
                    "requestheader-group-headers": '["X-Remote-Group"]',
                    "requestheader-username-headers": '["X-Remote-User"]',
                },
            }
        )
        put(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "clusterIP": "10.96.0.1",
                    "ports": [{"name": "https", "port": 443, "targetPort": 6443}],
                },
            }
        )
        for ns in SEED_NAMESPACES:
            put(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": ns},
                }
            )
        major, minor = DEFAULT_VERSION
        put(node_object(f"v{major}.{minor}.0"))
        return cluster

    # ------------------------------------------------------------------ in-process API

    def _type(self, api_version: str, kind: str) -> ResourceType:
        rt = self.cluster.registry.by_kind(api_version, kind)
        if rt is None:
            raise ApiError(
                404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"'
            )
        return rt

    def _admit(self, pod: dict[str, Any], username: str) -> dict[str, Any]:
        """Run mutating webhooks on the server's loop (blocks; never call from that loop)."""
        if not has_webhooks(self.cluster):
            return pod
        if threading.current_thread() is self._thread.thread:
            raise RuntimeError("admission cannot be awaited from the API server's own thread")
        future = asyncio.run_coroutine_threadsafe(
            admit_pod(self.cluster, pod, False, username), self._thread.loop
        )
        return future.result(60)

    def _admit_from_controller(self, pod: dict[str, Any]) -> dict[str, Any]:
        return self._admit(pod, "system:serviceaccount:kube-system:replicaset-controller")

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create as the server would, mutating webhooks included for Pods.

        With webhooks registered, this blocks until they answer: from an async test whose
        event loop serves the webhook, call it through `loop.run_in_executor`.
        """
        rt = self._type(obj.get("apiVersion", ""), obj.get("kind", ""))
        if rt.kind == "SelfSubjectAccessReview":
            return self.cluster.auth.access_review(obj)
        if rt.kind == "TokenReview":
            return self.cluster.auth.token_review(obj)
        if rt.kind == "Pod" and rt.builtin:
            meta = {"namespace": "default", **(obj.get("metadata") or {})}
            obj = self._admit({**obj, "metadata": meta}, "kubernetes-admin")
        return self.cluster.store.create(
            rt, obj.get("metadata", {}).get("namespace"), obj, manager=MANAGER
        )

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        rt = self._type(api_version, kind)
        try:
            return self.cluster.store.get(rt, namespace, name)
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        return self.cluster.store.list(self._type(api_version, kind), namespace)[0]

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        rt = self._type(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata", {})
        return self.cluster.store.replace(
            rt, meta.get("namespace"), meta.get("name", ""), obj, manager=MANAGER
        )

    def replace_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        rt = self._type(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata", {})
        return self.cluster.store.replace(
            rt,
            meta.get("namespace"),
            meta.get("name", ""),
            obj,
            subresource="status",
            manager=MANAGER,
        )

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        patch_type: str = "merge",
    ) -> dict[str, Any]:
        """Patch in-process; `patch_type` is merge, json, strategic or apply."""
        rt = self._type(api_version, kind)
        return self.cluster.store.patch(
            rt, namespace, name, patch_type, patch, manager=MANAGER, force=True
        )

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        self.cluster.store.delete(self._type(api_version, kind), namespace, name)

    # ------------------------------------------------------------------ test knobs

    def set_version(self, major: int, minor: int) -> None:
        self.cluster.version = (major, minor)

    def deny(self, verb: str, resource: str, group: str = "", namespace: str | None = None) -> None:
        self.cluster.auth.deny(verb, resource, group, namespace)

    def register_token(
        self,
        token: str,
        username: str,
        groups: tuple[str, ...] = (),
        audiences: tuple[str, ...] = (),
    ) -> None:
        self.cluster.auth.register_token(token, username, groups, audiences)

    def set_history_window(self, events: int) -> None:
        """Keep only the last `events` events for watches (older versions get 410 Gone)."""
        self.cluster.store.set_history_window(events)

    def set_bookmark_interval(self, seconds: float) -> None:
        self.cluster.bookmark_interval = seconds

    def route_webhook(self, namespace: str, service: str, port: int, base_url: str) -> None:
        """Send admission calls for Service `namespace/service:port` to `base_url` instead."""
        self.cluster.webhook_urls[(namespace, service, port)] = base_url.rstrip("/")

    def route_pod_proxy(self, namespace: str, pod: str, port: int, base_url: str) -> None:
        """Answer `pods/<pod>:<port>/proxy/...` from `base_url` (the pod's own server)."""
        self.cluster.pod_proxy_urls[(namespace, pod, port)] = base_url.rstrip("/")

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster (its own discovery cache per cluster)."""
        cache = self._tmp / f"kubectl-cache-{self._generation}"
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self._tmp)}
        return subprocess.run(
            ["kubectl", f"--cache-dir={cache}", *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )


def start_kube_api(tmp_dir: Path, port: int = 0, kubeconfig: Path | None = None) -> KubeAPI:
    """Start an emulated cluster on 127.0.0.1 (`port` 0: an ephemeral one)."""
    return KubeAPI(tmp_dir, port, kubeconfig)
