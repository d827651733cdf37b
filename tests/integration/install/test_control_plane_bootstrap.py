"""The control plane as install renders it, run for real: identity bootstraps, destination mTLS.

Each control-plane pod is a network-namespace pod of the netns bed, running exactly the
containers `lacewing install` renders: proxy-init with its rendered flags (real iptables), the
controller with its rendered args and env (as uid 2103, its runAsUser), and the proxy with its
rendered env (as uid 2102). What a kubelet would provide is mapped by hand and only that:
volume mounts (the issuer Secret, the trust-roots ConfigMap, the projected identity token
minted by the API test bed's TokenRequest) become files at the same names under one directory,
`valueFrom` is resolved, the in-cluster kubeconfig is `KUBECONFIG`, and the Services' DNS
names resolve (through /etc/netns hosts) to the pod that backs them. The API test bed runs in
its own pod; TCP relays give every pod the same `https://127.0.0.1:6443`. The identity and
destination Services are relays on the node's bridge that forward only while their pod's
proxy reports ready, as kube-proxy forwards only to ready endpoints: that is what makes the
old wiring (the identity pod's proxy asking identity through its Service) deadlock here too.

Proven: the identity pod's proxy gets its certificate from its own controller on localhost
(no deadlock on the Service's readiness); destination gets its certificate from identity with
its token (it never sees the issuer key), through its pod's redirecting proxy; the three
proxies are ready; a meshed client (a certificate from identity) reads destination's stream
over mTLS and sees a workload announced with its identity and identity's own port without one;
and `lacewing check` passes, its dry-run Pod injected by the injector pod through real
iptables (the API server reaches port 8443, which the pod's proxy-init skips).

The test bed's own Pod objects (its kubelet marks them Ready) stand in for these processes in
the API; the full cold start with pods the API really tracks is the test-bed kubelet's test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from tests.integration.cli.policy_controller import ThreadedPolicy
from tests.support.kubeapi.testbed import KubeAPI, start_kube_api
from tests.support.netns.bed import PYTHON, Cluster, Pod, Proc, sh

from lacewing.core.identity import Identity
from lacewing.install import credentials, sidecar
from lacewing.install.render import render_control_plane, render_crds
from lacewing.install.values import Values
from lacewing.k8s.cluster import Cluster as KubeCluster
from lacewing.local import netns as local_netns
from lacewing.proxy.identity.client import IdentityClient
from lacewing.proxy.identity.credentials import (
    Credentials,
    client_context,
    make_csr,
    new_private_key,
)

pytestmark = pytest.mark.root

API_PORT, RELAY_PORT = 6443, 6444
CONTROLLER_UID, PROXY_UID = 2103, 2102
TD = "cluster.local"
Obj = dict[str, Any]


@pytest.fixture
def mounts() -> Iterator[Path]:
    """World-traversable (the controllers and proxies run as 2103 / 2102), removed after."""
    path = Path(tempfile.mkdtemp(prefix="wtcp-mounts-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.parents:
        if parent == Path("/tmp"):
            break
        parent.chmod(0o755)
    path.write_text(text)
    path.chmod(0o644)
    return path


def _by(docs: list[Obj], kind: str, name: str) -> Obj:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _pod_spec(docs: list[Obj], component: str) -> Obj:
    spec: Obj = _by(docs, "Deployment", f"lacewing-{component}")["spec"]["template"]["spec"]
    return spec


def _token(api: KubeAPI, namespace: str, account: str) -> str:
    request = {"spec": {"audiences": [sidecar.IDENTITY_TOKEN_AUDIENCE], "expirationSeconds": 86400}}
    answer = api.cluster.auth.token_request(namespace, account, request)
    return str(answer["status"]["token"])


class ControlPlanePod:
    """One rendered control-plane pod, its mounts mapped to files under `root`."""

    def __init__(self, pod: Pod, spec: Obj, root: Path, mounts: dict[str, str]) -> None:
        self.pod, self.spec, self.root, self.mounts = pod, spec, root, mounts

    def path(self, text: str) -> str:
        for mount, local in self.mounts.items():
            text = text.replace(mount, local)
        return text

    def container(self, name: str) -> Obj:
        return next(c for c in self.spec["containers"] if c["name"] == name)

    def env(self, container: Obj, config_maps: dict[str, Obj]) -> dict[str, str]:
        out = {}
        for item in container.get("env") or []:
            if "value" in item:
                out[item["name"]] = self.path(item["value"])
                continue
            source = item["valueFrom"]
            if "fieldRef" in source:
                field = source["fieldRef"]["fieldPath"]
                out[item["name"]] = {
                    "metadata.name": f"lacewing-{self.pod.name}",
                    "metadata.namespace": "lacewing",
                    "spec.serviceAccountName": self.spec["serviceAccountName"],
                }[field]
            else:
                ref = source["configMapKeyRef"]
                out[item["name"]] = config_maps[ref["name"]]["data"][ref["key"]]
        return out

    def start(
        self, kubeconfig: Path, config_maps: dict[str, Obj], proxy_override: dict[str, str]
    ) -> tuple[Proc, Proc]:
        init = self.spec["initContainers"][0]
        self.pod.proxy_init(*init["args"][1:])
        main = self.spec["containers"][0]
        main_env = {**self.env(main, config_maps), "KUBECONFIG": str(kubeconfig)}
        argv = [self.path(a) for a in main["args"]]
        setpriv = ["setpriv", f"--reuid={CONTROLLER_UID}", f"--regid={CONTROLLER_UID}"]
        controller = self.pod.spawn(
            main["name"],
            [*setpriv, "--clear-groups", PYTHON, "-m", "lacewing.cli.main", *argv],
            env=main_env,
        )
        proxy_spec = self.container(sidecar.PROXY_CONTAINER_NAME)
        proxy_env = self.env(proxy_spec, config_maps)
        # runAsUser 2102: the proxy binds as root and drops to it (what the bed does)
        proxy_env |= {"LACEWING_PROXY_RUN_AS_UID": str(PROXY_UID)}
        proxy_env |= {"LACEWING_PROXY_RUN_AS_GID": str(PROXY_UID)}
        proxy_env |= proxy_override
        proxy = self.pod.spawn("proxy", [PYTHON, "-m", "lacewing.cli.main", "proxy"], env=proxy_env)
        return controller, proxy


def _wait(what: str, ok: Any, procs: list[Proc], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        for proc in procs:
            if not proc.alive():
                pytest.fail(f"{proc.name} exited while waiting for {what}:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.log_tail()}" for p in procs)
            pytest.fail(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.2)


def _ready(pod: Pod) -> bool:
    result = pod.curl(
        "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:4191/ready", timeout=2
    )
    return result.stdout.decode() == "200"


WEB = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""


def _web_deployment() -> Obj:
    values = Values()
    template = {
        "metadata": {"labels": {"app": "web", **sidecar.proxy_pod_labels(values)}},
        "spec": {
            "serviceAccountName": "web",
            "initContainers": [sidecar.proxy_init_container(values)],
            "containers": [
                sidecar.proxy_container(values),
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 8080}]},
            ],
            "volumes": sidecar.proxy_volumes(values),
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
    }


async def _stream_first(
    host: str, context: ssl.SSLContext, server: str, authority: str
) -> tuple[Obj, x509.Certificate]:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, 8086, ssl=context, server_hostname=server), 10
    )
    try:
        peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.write(
            f"GET /v1/endpoints?authority={authority} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        await writer.drain()
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        while True:
            line = (await asyncio.wait_for(reader.readline(), 10)).strip()
            if line.startswith(b"{"):  # chunked: skip chunk-size lines
                return json.loads(line), x509.load_der_x509_certificate(peer)
    finally:
        writer.close()


@pytest.mark.parametrize("old_wiring", [False, True], ids=["as-rendered", "identity-via-service"])
def test_cold_start_identity_bootstraps_and_destination_serves_mtls(
    netns_cluster: Cluster, mounts: Path, old_wiring: bool
) -> None:
    """`identity-via-service` is the wiring before this fix (the identity pod's proxy asked
    identity through its Service): the same cold start deadlocks, which this bed shows."""
    api_pod = netns_cluster.add_pod("api")
    pods = {c: netns_cluster.add_pod(c) for c in ("identity", "destination", "proxy-injector")}
    kubeconfig = mounts / "kubeconfig"
    api: KubeAPI = api_pod.in_netns(
        lambda: start_kube_api(mounts / "kubeapi", API_PORT, kubeconfig), timeout=30
    )
    try:
        kubeconfig.chmod(0o644)
        api_pod.spawn("relay", [PYTHON, "-m", "tests.support.tcp_relay",
                                f"0.0.0.0:{RELAY_PORT}", f"127.0.0.1:{API_PORT}"])  # fmt: skip
        # Services as kube-proxy makes them: a virtual address (on the node's bridge) that
        # forwards to the backing pod only while that pod is ready (its proxy's /ready).
        node = Pod("node", netns_cluster.node, "", netns_cluster)
        netns_cluster.pods["node"] = node  # stopped and deleted with the cluster
        subnet = netns_cluster.subnet
        services = {"identity": (f"{subnet}.2", 8080), "destination": (f"{subnet}.3", 8086)}
        for name, (vip, port) in services.items():
            sh("ip", "-n", netns_cluster.node, "addr", "add", f"{vip}/24", "dev", "lwtbr0")
            backend = pods[name].ip
            gated = [f"{vip}:{port}", f"{backend}:{port}", f"http://{backend}:4191/ready"]
            node.spawn(f"svc-{name}", [PYTHON, "-m", "tests.support.tcp_relay", *gated])
        hosts = "127.0.0.1 localhost\n" + "".join(
            f"{vip} lacewing-{name}.lacewing.svc.{TD}\n" for name, (vip, _) in services.items()
        )
        for pod in pods.values():
            local_netns.write_etc(pod.netns, hosts, "nameserver 127.0.0.1\n")
            relay = [f"127.0.0.1:{API_PORT}", f"{api_pod.ip}:{RELAY_PORT}"]
            pod.spawn("relay-api", [PYTHON, "-m", "tests.support.tcp_relay", *relay])
        _run(api, api_pod, pods, kubeconfig, mounts, old_wiring)
    finally:
        for pod in pods.values():
            local_netns.remove_etc(pod.netns)
        api.close()


def _run(
    api: KubeAPI, api_pod: Pod, pods: dict[str, Pod], kubeconfig: Path, root: Path, old: bool
) -> None:
    import yaml

    values = Values()
    docs = render_crds(values) + render_control_plane(values, credentials.generate("lacewing", TD))
    extra = [*yaml.safe_load_all(WEB), _web_deployment()]

    def apply_all() -> None:
        with KubeCluster.connect(str(kubeconfig)) as cluster:
            for doc in docs + extra:
                cluster.apply(doc)

    api_pod.in_netns(apply_all, timeout=60)
    api.kubelet.sync()
    api.kubelet.mark_ready()  # the test bed's pods: objects only; ours run below
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    issuer = _by(docs, "Secret", "lacewing-identity-issuer")["data"]
    anchors = config_maps[sidecar.TRUST_ROOTS_CONFIG_MAP]["data"][sidecar.TRUST_ROOTS_KEY]
    procs: list[Proc] = []
    running = {}
    for component, pod in pods.items():
        base = root / component
        token = _token(api, "lacewing", f"lacewing-{component}")
        mapping = {
            "/var/run/lacewing/identity/issuer": str(base / "issuer"),
            "/var/run/lacewing/identity/trust-anchors": str(base / "trust-anchors"),
            "/var/run/lacewing/tls": str(base / "tls"),
            "/var/run/secrets/tokens": str(base / "tokens"),
        }
        _write(base / "tokens" / "lacewing-identity-token", token)
        _write(base / "trust-anchors" / sidecar.TRUST_ROOTS_KEY, anchors)
        if component == "identity":  # the issuer Secret is mounted in the identity pod only
            for key in ("tls.crt", "tls.key"):
                _write(base / "issuer" / key, base64.b64decode(issuer[key]).decode())
        if component == "proxy-injector":  # its webhook serving certificate
            webhook = _by(docs, "Secret", "lacewing-proxy-injector-k8s-tls")["data"]
            for key in ("tls.crt", "tls.key"):
                _write(base / "tls" / key, base64.b64decode(webhook[key]).decode())
        running[component] = ControlPlanePod(pod, _pod_spec(docs, component), base, mapping)
    # Cold start: everything at once, as a kubelet starts the pods of a fresh install.
    identity_proxy_env = running["identity"].env(
        running["identity"].container(sidecar.PROXY_CONTAINER_NAME), config_maps
    )
    assert identity_proxy_env["LACEWING_IDENTITY_ADDR"] == "localhost:8080"
    service = f"lacewing-identity.lacewing.svc.{TD}:8080"
    for name, cp in running.items():
        override = {"LACEWING_IDENTITY_ADDR": service} if old and name == "identity" else {}
        procs += cp.start(kubeconfig, config_maps, override)
    if old:
        time.sleep(8)  # a cold start that works takes ~2 s here
        assert not any(_ready(pod) for pod in pods.values())  # identity, destination, injector
        assert "cannot reach the identity service" in procs[1].log.read_text()
        assert "listening on https" not in procs[2].log.read_text()
        return
    _wait("the identity pod's proxy to be ready", lambda: _ready(pods["identity"]), procs)
    _wait("the destination pod's proxy to be ready", lambda: _ready(pods["destination"]), procs)
    _wait("the injector pod's proxy to be ready", lambda: _ready(pods["proxy-injector"]), procs)
    destination_log = procs[2].log
    _wait(
        "destination to serve mTLS",
        lambda: "listening on https (mTLS)" in destination_log.read_text(),
        procs,
    )
    assert "waiting for a certificate from identity" in destination_log.read_text()

    # A meshed client: a certificate from identity for shop/web, then destination's stream.
    web = Identity("shop", "web", TD)
    web_token = _token(api, "shop", "web")

    async def as_meshed_client() -> tuple[Obj, Obj, x509.Certificate]:
        key = new_private_key()
        # (this thread does not see the pods' /etc/netns hosts: the Service's pod by address)
        identity_service = Identity("lacewing", "lacewing-identity", TD)
        client = IdentityClient(pods["identity"].ip, 8080, identity_service, anchors)
        answer = await client.certify(web, web_token, make_csr(key, web))
        creds = Credentials.from_pem(web, key, answer.leaf_pem, answer.chain_pem)
        context = client_context(creds, anchors)
        server = Identity("lacewing", "lacewing-destination", TD).name
        host = pods["destination"].ip
        shop, cert = await _stream_first(host, context, server, f"web.shop.svc.{TD}:80")
        own, _ = await _stream_first(
            host, context, server, f"lacewing-identity.lacewing.svc.{TD}:8080"
        )
        return shop, own, cert

    shop, own, cert = pods["identity"].in_netns(lambda: asyncio.run(as_meshed_client()), 30)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert Identity("lacewing", "lacewing-destination", TD).name in names.get_values_for_type(
        x509.DNSName
    )
    shop_ids = {e.get("identity") for e in _endpoints(shop)}
    assert shop_ids == {web.name}, shop
    assert {e.get("identity") for e in _endpoints(own)} == {None}, own
    # The API server calls the webhook at the injector pod (port 8443 skipped by its
    # proxy-init): `lacewing check`, run beside the API, dry-runs a Pod and sees it injected.
    injector = pods["proxy-injector"]
    api.route_webhook("lacewing", "lacewing-proxy-injector", 443, f"https://{injector.ip}:8443")
    # (the policy pod is a test-bed object only: its controller runs in this process, beside
    # the API in its namespace, asked by `check` through pods/proxy as the pod would be)
    policy = ThreadedPolicy(api, "lacewing")
    api_pod.in_netns(policy.start, timeout=20)  # its threads and sockets stay in there
    try:
        checked = api_pod.run(
            [PYTHON, "-m", "lacewing.cli.main", "--kubeconfig", str(kubeconfig), "check",
             "--wait", "30", "--skip-version-check"],
            timeout=90,
            env={"PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        )  # fmt: skip
    finally:
        policy.stop()
    report = checked.stdout.decode()
    assert checked.returncode == 0, report + checked.stderr.decode()
    assert "√ dry-run pods come back injected\n" in report
    for proc in procs:
        assert proc.alive(), proc.log_tail()
    assert os.path.exists(kubeconfig)


def _endpoints(event: Obj) -> list[Obj]:
    found = event.get("endpoints") or event.get("add") or []
    assert found, event
    return list(found)
