"""`NodeRuntime`: the test bed's node, running every Pod scheduled to it for real.

One thread ticks every `tick` seconds (no event loop, no sleeping in between but the tick):
1. the controllers (`controllers.Kubelet.sync`) turn Deployments into ReplicaSets and Pods,
   and a Pod created without a node is bound to this one (the scheduler's part);
2. every Pod whose `spec.nodeName` is this node gets a `PodRunner` (`pods.py`) and an
   address: the `podIP` the controllers gave it, or a free one from the node's podCIDR
   (addresses of pods still terminating are never handed out again meanwhile); a Pod gone
   from the store is terminated, and its namespace removed when its processes are gone;
3. each runner's status is written to the Pod's status subresource when it changed, and
   the controllers recompute EndpointSlices and Deployment statuses from it;
4. Services: the kube-proxy chain (`services.nat_restore`) is replaced in the node and in
   every started pod when it changes, and every pod's hosts file is rewritten when the set
   of Services changes;
5. each MutatingWebhookConfiguration's Service gets a relay (`relay.py`) from the host into
   the node, and the API server's webhook client is pointed at it; every declared container
   port of every pod is routed for the API server's `pods/<name>:<port>/proxy/` (PodProxy).
The API relay (node bridge address, port 6443, to the API server on 127.0.0.1) starts with
the node. `stop()` stops the loop, terminates every pod (SIGTERM, SIGKILL after
`stop_grace`), deletes every namespace and /etc/netns entry it made (`lwk-<id>-*`) and its
state directory. Probe periods are capped at `max_probe_period` (default 1 s) and restart
back-off starts at `backoff.first`, so tests do not wait Kubernetes' ten seconds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.kubeapi.errors import ApiError
from tests.support.kubeapi.kubelet.containers import Backoff
from tests.support.kubeapi.kubelet.controllers import NODE_NAME, NODE_POD_CIDR
from tests.support.kubeapi.kubelet.network import Network
from tests.support.kubeapi.kubelet.pods import API_SERVICE_HOST, PodContext, PodRunner
from tests.support.kubeapi.kubelet.relay import PodProxy, Relay, dial_in, listen_in
from tests.support.kubeapi.kubelet.services import hosts_text, nat_restore, resolv_text

if TYPE_CHECKING:
    from tests.support.kubeapi.testbed import KubeAPI

__all__ = ["NodeRuntime"]

log = logging.getLogger("testbed.kubelet")
API_RELAY_PORT = 6443
MANAGER = "kubelet"
TEST_BACKOFF = Backoff(first=1.0, max=10.0)  # Kubernetes: 10 s doubling to 300 s


class NodeRuntime:
    def __init__(
        self,
        api: KubeAPI,
        state_dir: Path,
        *,
        backoff: Backoff = TEST_BACKOFF,
        max_probe_period: float | None = 1.0,
        tick: float = 0.2,
        stop_grace: float = 5.0,
        prefix: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.prefix = prefix or f"lwk-{secrets.token_hex(2)}-"
        self.root = Path(state_dir)
        self._tick = tick
        self._stop_grace = stop_grace
        self._clock = clock
        self.network = Network(self.prefix, NODE_POD_CIDR)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kubelet-probe")
        self.ctx = PodContext(
            network=self.network,
            root=self.root,
            lookup=self._lookup,
            mint=self._mint,
            ca_pem=api.ca_pem,
            backoff=backoff,
            max_probe_period=max_probe_period,
            pool=self._pool,
            automount=self._automount,
        )
        self.runners: dict[str, PodRunner] = {}
        self._written: dict[str, dict[str, Any]] = {}
        self._restore = ""
        self._hosts: dict[str, str] = {}
        self._webhook_relays: dict[tuple[str, str, int], Relay] = {}
        self._api_relay: Relay | None = None
        self._pod_proxy: PodProxy | None = None
        self._proxied: set[tuple[str, str, int]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cluster: Any = None
        self.errors: list[str] = []
        self.ticks = 0
        self._ticked = threading.Condition()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> NodeRuntime:
        self.root.mkdir(parents=True, exist_ok=True)
        self.network.up()
        api_port = int(self.api.url.rsplit(":", 1)[1])
        listener = listen_in(self.network.node, self.network.gateway, API_RELAY_PORT)
        self._api_relay = Relay(listener, lambda: dial_in(None, "127.0.0.1", api_port), "api")
        self._pod_proxy = PodProxy(listen_in(None, "127.0.0.1", 0), self.network.node, self._ip_of)
        self._thread = threading.Thread(target=self._loop, name="kubelet", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        now = self._clock()
        for runner in self.runners.values():
            runner.grace = min(runner.grace, self._stop_grace)
            runner.delete(now)
        deadline = now + self._stop_grace + 2
        while any(not r.finished for r in self.runners.values()) and self._clock() < deadline:
            for runner in self.runners.values():
                with contextlib.suppress(Exception):
                    runner.tick(self._clock(), "", "", self._restore)
            time.sleep(0.05)
        for runner in self.runners.values():
            with contextlib.suppress(Exception):
                runner.teardown()
        self.runners.clear()
        for key, relay in self._webhook_relays.items():
            relay.stop()
            self.api.cluster.webhook_urls.pop(key, None)
        self._webhook_relays.clear()
        for key in self._proxied:
            self.api.cluster.pod_proxy_urls.pop(key, None)
        for relay in (self._api_relay, self._pod_proxy):
            if relay is not None:
                relay.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.network.down()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> NodeRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = self._clock()
            try:
                self.step()
            except Exception as exc:  # a bug here must not stop the node; tests read errors
                log.exception("kubelet tick failed")
                self.errors.append(repr(exc))
            with self._ticked:
                self.ticks += 1
                self._ticked.notify_all()
            self._stop.wait(max(self._tick - (self._clock() - started), 0.01))

    # ------------------------------------------------------------------ for tests

    def runner(self, namespace: str, name: str) -> PodRunner:
        for runner in list(self.runners.values()):
            if runner.namespace == namespace and runner.name == name and not runner.deleting:
                return runner
        raise KeyError(f"no pod {namespace}/{name} runs on the node")

    def settle(self, ticks: int = 2, timeout: float = 10) -> None:
        """Wait until `ticks` whole ticks have run from now: what the API shows is applied."""
        with self._ticked:
            target = self.ticks + ticks
            self._ticked.wait_for(lambda: self.ticks >= target, timeout)

    def logs(self, namespace: str, name: str, container: str) -> str:
        """The container's output so far ("" while the pod is not on the node yet)."""
        try:
            path = self.runner(namespace, name).dir / "logs" / f"{container}.log"
        except KeyError:
            return ""
        return path.read_text(errors="replace") if path.exists() else ""

    def volume_dir(self, namespace: str, name: str, volume: str) -> Path:
        return self.runner(namespace, name).dir / "volumes" / volume

    def running_pids(self) -> list[int]:
        """Every container process the node has started and not yet reaped."""
        return [c.proc.pid for r in list(self.runners.values()) for c in r.all if c.proc]

    # ------------------------------------------------------------------ helpers for pods

    def _types(self) -> dict[str, Any]:
        reg = self.api.cluster.registry
        kinds = {
            "Pod": ("v1", "Pod"),
            "Service": ("v1", "Service"),
            "Secret": ("v1", "Secret"),
            "ConfigMap": ("v1", "ConfigMap"),
            "ServiceAccount": ("v1", "ServiceAccount"),
            "EndpointSlice": ("discovery.k8s.io/v1", "EndpointSlice"),
            "Webhooks": ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
        }
        return {k: reg.by_kind(*v) for k, v in kinds.items()}

    def _lookup(self, namespace: str) -> Callable[[str, str], dict[str, Any] | None]:
        def get(kind: str, name: str) -> dict[str, Any] | None:
            rt = self._types()[kind]
            try:
                return self.api.cluster.store.get(rt, namespace, name)
            except ApiError:
                return None

        return get

    def _mint(self, namespace: str, account: str, audiences: list[str], seconds: int) -> str:
        request = {"spec": {"audiences": audiences, "expirationSeconds": seconds}}
        answer = self.api.cluster.auth.token_request(namespace, account, request)
        return str(answer["status"]["token"])

    def _automount(self, pod: dict[str, Any]) -> bool:
        spec = pod.get("spec") or {}
        if "automountServiceAccountToken" in spec:
            return bool(spec["automountServiceAccountToken"])
        sa = self._lookup(pod["metadata"]["namespace"])(
            "ServiceAccount", spec.get("serviceAccountName") or "default"
        )
        return not (sa is not None and sa.get("automountServiceAccountToken") is False)

    def held_ips(self) -> set[str]:
        return {r.ip for r in self.runners.values()}

    def _free_ip(self, used: set[str]) -> str:
        for host in ipaddress.ip_network(NODE_POD_CIDR).hosts():
            if str(host) not in used and str(host) != self.network.gateway:
                return str(host)
        raise ApiError(422, "Invalid", f"the node's pod CIDR {NODE_POD_CIDR} is exhausted")

    def _free_index(self) -> int:
        used = {r.index for r in self.runners.values()}
        return next(i for i in range(len(used) + 1) if i not in used)

    # ------------------------------------------------------------------ one tick

    def step(self) -> None:
        cluster = self.api.cluster
        if cluster is not self._cluster:  # the test bed was reset: a new, empty cluster
            self._drop_all()
            self._cluster = cluster
        controllers = self.api.kubelet
        controllers.reserved_ips = self.held_ips
        controllers.sync()
        types = self._types()
        store = cluster.store
        now = self._clock()
        self._schedule(types["Pod"])
        pods = [
            p
            for p in store.list(types["Pod"])[0]
            if (p.get("spec") or {}).get("nodeName") == NODE_NAME
        ]
        live = {p["metadata"]["uid"]: p for p in pods}
        for uid, runner in list(self.runners.items()):
            if uid not in live:
                runner.delete(now)
        used = self.held_ips() | {str((p.get("status") or {}).get("podIP")) for p in pods}
        for uid, pod in live.items():
            if uid in self.runners:
                self.runners[uid].pod = pod
                continue
            ip = (pod.get("status") or {}).get("podIP") or self._free_ip(used)
            used.add(ip)
            self.runners[uid] = PodRunner(pod, self._free_index(), ip, self.ctx)
        services = store.list(types["Service"])[0]
        for uid, runner in list(self.runners.items()):
            hosts = hosts_text(runner.name, runner.ip, runner.namespace, services)
            if runner.networked and self._hosts.get(uid) != hosts and not runner.finished:
                self.network.set_hosts(runner.netns, hosts)
            self._hosts[uid] = hosts
            try:
                runner.tick(now, hosts, resolv_text(runner.namespace), self._restore)
            except Exception as exc:
                log.exception("pod %s/%s", runner.namespace, runner.name)
                self.errors.append(f"{runner.namespace}/{runner.name}: {exc!r}")
            if runner.finished:
                runner.teardown()
                del self.runners[uid]
                self._hosts.pop(uid, None)
                self._written.pop(uid, None)
                continue
            if uid in live:
                self._write_status(types["Pod"], live[uid], runner)
        controllers.sync()
        self._sync_services(types)
        self._sync_webhooks(types)
        self._sync_pod_proxy()

    def _sync_services(self, types: dict[str, Any]) -> None:
        """kube-proxy: replace the Service chain everywhere when endpoints changed."""
        store = self.api.cluster.store
        services = store.list(types["Service"])[0]
        slices = store.list(types["EndpointSlice"])[0] if types["EndpointSlice"] else []
        api_dest = f"{self.network.gateway}:{API_RELAY_PORT}"
        restore = nat_restore(services, slices, [(API_SERVICE_HOST, 443, api_dest)])
        if restore != self._restore:
            self._restore = restore
            self.network.apply_services(self.network.node, restore)
            for runner in self.runners.values():
                if runner.jumped and not runner.finished:
                    self.network.apply_services(runner.netns, restore)

    def _ip_of(self, namespace: str, name: str) -> str | None:
        for runner in list(self.runners.values()):
            if runner.namespace == namespace and runner.name == name and not runner.deleting:
                return runner.ip
        return None

    def _sync_pod_proxy(self) -> None:
        """`pods/<name>:<port>/proxy/` for every declared port of every pod on the node."""
        assert self._pod_proxy is not None
        wanted: set[tuple[str, str, int]] = set()
        for runner in self.runners.values():
            if runner.deleting:
                continue
            for c in runner.all:
                for port in c.spec.get("ports") or []:
                    wanted.add((runner.namespace, runner.name, int(port["containerPort"])))
        urls = self.api.cluster.pod_proxy_urls
        for key in self._proxied - wanted:
            urls.pop(key, None)
        for key in wanted:
            urls[key] = self._pod_proxy.base_url(*key)
        self._proxied = wanted

    def _schedule(self, rt: Any) -> None:
        """The scheduler: a Pod without a node is bound to this one (there is no other)."""
        store = self.api.cluster.store
        for pod in store.list(rt)[0]:
            if not (pod.get("spec") or {}).get("nodeName"):
                meta = pod["metadata"]
                store.patch(
                    rt,
                    meta["namespace"],
                    meta["name"],
                    "merge",
                    {"spec": {"nodeName": NODE_NAME}},
                    manager="kube-scheduler",
                )

    def _write_status(self, rt: Any, pod: dict[str, Any], runner: PodRunner) -> None:
        status = runner.status()
        if self._written.get(runner.uid) == status:
            return
        meta = pod["metadata"]
        try:
            current = self.api.cluster.store.get(rt, meta["namespace"], meta["name"])
        except ApiError:
            return
        if current["metadata"]["uid"] != runner.uid:
            return
        current["status"] = status
        self.api.cluster.store.replace(
            rt, meta["namespace"], meta["name"], current, subresource="status", manager=MANAGER
        )
        self._written[runner.uid] = status

    def _sync_webhooks(self, types: dict[str, Any]) -> None:
        if types["Webhooks"] is None:
            return
        wanted: set[tuple[str, str, int]] = set()
        for config in self.api.cluster.store.list(types["Webhooks"])[0]:
            for hook in config.get("webhooks") or []:
                svc = (hook.get("clientConfig") or {}).get("service")
                if svc:
                    wanted.add(
                        (svc.get("namespace", ""), svc.get("name", ""), int(svc.get("port", 443)))
                    )
        for key in wanted - set(self._webhook_relays):
            self._webhook_relays[key] = Relay(
                listen_in(None, "127.0.0.1", 0),
                self._service_dialer(key, types),
                f"webhook-{key[1]}",
            )
        for key in set(self._webhook_relays) - wanted:
            self._webhook_relays.pop(key).stop()
            self.api.cluster.webhook_urls.pop(key, None)
        for key, relay in self._webhook_relays.items():
            self.api.cluster.webhook_urls[key] = f"https://127.0.0.1:{relay.port}"

    def _service_dialer(
        self, key: tuple[str, str, int], types: dict[str, Any]
    ) -> Callable[[], Any]:
        namespace, name, port = key

        def dial() -> Any:
            try:
                svc = self.api.cluster.store.get(types["Service"], namespace, name)
            except ApiError:
                raise OSError(f"no service {namespace}/{name}") from None
            return dial_in(self.network.node, svc["spec"]["clusterIP"], port)

        return dial

    def _drop_all(self) -> None:
        for runner in self.runners.values():
            with contextlib.suppress(Exception):
                runner.teardown()
        self.runners.clear()
        self._written.clear()
        self._hosts.clear()
        for relay in self._webhook_relays.values():
            relay.stop()
        self._webhook_relays.clear()
        self._restore = ""
