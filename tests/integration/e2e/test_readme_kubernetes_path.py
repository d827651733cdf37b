"""The README's Kubernetes path, unchanged, on the API test bed with its real kubelet.

The user's commands run as the user runs them: the checkout's `lacewing` CLI and the real
`kubectl` against the test bed's kubeconfig, install output piped into `kubectl apply`.
The kubelet (`tests.support.kubeapi.kubelet.node`) runs every pod for real, so what the
steps check is what a cluster would show: pods running and ready by their own probes, the
webhook injecting over the pod network, two workloads talking by Service DNS name, the
capture on the wire between them, the server proxy's metrics, and nothing left running.

The steps are ordered tests sharing one cluster (module fixture). A step that depends on
an earlier step which did not pass is skipped, naming the step it needed (the failure itself
is reported by that earlier step). Cleanup (every pod, namespace and process) runs even when
a step fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.kubeapi import KubeAPI, start_kube_api
from tests.support.kubeapi.kubelet.node import NodeRuntime
from tests.support.netns.scrape import Sample, parse
from tests.support.pcap import tcp_streams, tls_records

from lacewing.local.netns import http_get, in_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        subprocess.run(["sh", "-c", "command -v kubectl tcpdump"], capture_output=True).returncode
        != 0,
        reason="needs kubectl and tcpdump on PATH (Debian: tcpdump; kubectl from "
        "https://dl.k8s.io or the kubernetes-client package)",
    ),
]

LACEWING = str(Path(sys.executable).with_name("lacewing"))
CP = "lacewing"
APP_NS = "shop"
CLIENT_ID = f"default.{APP_NS}.serviceaccount.identity.lacewing.cluster.local"

WORKLOADS = (Path(__file__).parents[2] / "support/kubeapi/kubelet/shop.yaml").read_text()


@dataclass
class Bed:
    api: KubeAPI
    node: NodeRuntime
    env: dict[str, str]
    passed: set[str] = field(default_factory=set)

    def lacewing(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LACEWING, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.api.kubectl(*args, input=input, timeout=60)

    def pipe(self, lacewing_args: list[str], kubectl_args: list[str]) -> None:
        """`lacewing ARGS | kubectl ARGS -f -`, failing on either side's error."""
        rendered = self.lacewing(*lacewing_args)
        assert rendered.returncode == 0, rendered.stderr
        applied = self.kubectl(*kubectl_args, "-f", "-", input=rendered.stdout)
        assert applied.returncode == 0, applied.stderr

    def pods(self, ns: str, app: str | None = None) -> list[dict[str, Any]]:
        pods = self.api.list("v1", "Pod", ns)
        return [p for p in pods if app is None or p["metadata"]["labels"].get("app") == app]

    def log(self, ns: str, pod: str, container: str) -> str:
        return self.node.logs(ns, pod, container)

    def logs_of(self, ns: str, container: str) -> str:
        return "\n".join(self.log(ns, p["metadata"]["name"], container) for p in self.pods(ns))

    def metrics(self, pod: dict[str, Any]) -> list[Sample]:
        """The proxy's /metrics on its admin port, scraped from the node as Prometheus would."""
        ip = pod["status"]["podIP"]
        code, body = in_netns(
            self.node.network.node, lambda: http_get(ip, 4191, "/metrics", timeout=5)
        )
        assert code == 200, body[:200]
        return parse(body.decode())

    def fetch(self, client: dict[str, Any], url: str, n: int) -> list[tuple[int, str]]:
        """Ask the client app (from its own pod's loopback) to GET `url` `n` times."""
        netns = self.node.runner(APP_NS, client["metadata"]["name"]).netns
        code, body = in_netns(
            netns,
            lambda: http_get("127.0.0.1", 8081, f"/fetch?url={url}&n={n}", timeout=90),
            timeout=100,
        )
        assert code == 200, body[:300]
        return [(s, b) for s, b in json.loads(body)]

    def needs(self, *steps: str) -> None:
        missing = [s for s in steps if s not in self.passed]
        if missing:
            pytest.skip(f"needs the step(s) {', '.join(missing)}, which did not pass")


def ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_for(what: str, fn: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.25)


def step(bed: Bed, name: str, body: Callable[[], None]) -> None:
    """Run a step; later steps that need it run only if it passed."""
    body()
    bed.passed.add(name)


# ---------------------------------------------------------------- the path


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    tmp = tmp_path_factory.mktemp("readme")
    api = start_kube_api(tmp)
    node = NodeRuntime(api, tmp / "node")
    env = {
        **os.environ,
        "KUBECONFIG": str(api.kubeconfig),
        "HOME": str(tmp),
        "LACEWING_SKIP_VERSION_CHECK": "1",
    }
    try:
        node.start()
        yield Bed(api, node, env)
    finally:
        node.stop()
        api.close()
    left = [n for n in os.listdir("/run/netns") if n.startswith(node.prefix)]
    assert not left, f"namespaces left behind: {left}"


def test_check_pre(bed: Bed) -> None:
    out = bed.lacewing("check", "--pre")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Status check results are √" in out.stdout
    bed.passed.add("check --pre")


def test_install_crds_and_control_plane(bed: Bed) -> None:
    bed.pipe(["install", "--crds"], ["apply"])
    bed.pipe(["install"], ["apply"])
    deployments = bed.api.list("apps/v1", "Deployment", CP)
    assert {d["metadata"]["name"] for d in deployments} >= {
        "lacewing-identity",
        "lacewing-destination",
        "lacewing-policy",
        "lacewing-proxy-injector",
    }
    bed.passed.add("install")


def test_check_waits_for_a_really_running_control_plane(bed: Bed) -> None:
    bed.needs("install")

    def body() -> None:
        out = bed.lacewing("check", "--wait", "90s", timeout=150)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
        assert "Status check results are √" in out.stdout
        pods = bed.pods(CP)
        assert pods and all(ready(p) for p in pods)
        # ready because their processes run and their probes pass, not because we said so
        for pod in pods:
            runner = bed.node.runner(CP, pod["metadata"]["name"])
            assert all(c.running for c in runner.mains), pod["metadata"]["name"]

    step(bed, "check", body)


def test_annotate_namespace_and_rollout_restart_injects(bed: Bed) -> None:
    bed.needs("install")

    def injector_ready() -> bool:
        pods = [p for p in bed.pods(CP) if "proxy-injector" in p["metadata"]["name"]]
        return bool(pods) and all(ready(p) for p in pods)

    def body() -> None:
        # the README runs `lacewing check` first; this step needs only the injector of it
        wait_for("the proxy injector to be ready", injector_ready, 90)
        applied = bed.kubectl("apply", "-f", "-", input=WORKLOADS)
        assert applied.returncode == 0, applied.stderr
        wait_for(
            "the plain workloads", lambda: len([p for p in bed.pods(APP_NS) if ready(p)]) == 3, 60
        )
        out = bed.kubectl("annotate", "ns", APP_NS, "lacewing.io/inject=enabled")
        assert out.returncode == 0, out.stderr
        out = bed.kubectl("rollout", "restart", "-n", APP_NS, "deploy")
        assert out.returncode == 0, out.stderr

        def meshed_and_ready() -> bool:
            pods = bed.pods(APP_NS)
            names = [
                {
                    c["name"]
                    for c in p["spec"].get("containers", []) + p["spec"].get("initContainers", [])
                }
                for p in pods
            ]
            return (
                len(pods) == 3
                and all(ready(p) for p in pods)
                and all({"lacewing-proxy", "lacewing-init"} <= n for n in names)
            )

        wait_for("3 injected pods, ready", meshed_and_ready, 90)
        bed.node.settle()

    step(bed, "inject", body)


def test_workloads_talk_by_service_name_over_mutual_tls(bed: Bed) -> None:
    bed.needs("inject")

    def body() -> None:
        (client,) = bed.pods(APP_NS, "client")
        echoes = bed.pods(APP_NS, "echo")
        capture = bed.node.root / "wire.pcap"
        veths = [f"lwkv{bed.node.runner(APP_NS, e['metadata']['name']).index}" for e in echoes]
        sniffers = [
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    bed.node.network.node,
                    "tcpdump",
                    "-i",
                    veth,
                    "-U",
                    "--immediate-mode",
                    "-s",
                    "0",
                    "-w",
                    f"{capture}.{i}",
                    f"tcp and host {client['status']['podIP']}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i, veth in enumerate(veths)
        ]
        try:
            time.sleep(1.0)  # tcpdump needs a moment before it captures
            results = bed.fetch(client, f"http://echo.{APP_NS}.svc.cluster.local/hi", 40)
            results += bed.fetch(client, "http://echo/short-name", 10)
            time.sleep(0.5)
        finally:
            for s in sniffers:
                s.terminate()
                s.wait(10)
        assert all(code == 200 for code, _ in results), results[:3]
        served = {json.loads(body)["pod"] for _, body in results}
        assert served == {e["metadata"]["name"] for e in echoes}, "requests did not spread"
        # on the wire between the two pods: TLS records and nothing else
        streams: dict[Any, bytes] = {}
        for i, echo in enumerate(echoes):
            pcap = Path(f"{capture}.{i}").read_bytes()
            streams |= tcp_streams(pcap, client["status"]["podIP"], echo["status"]["podIP"])
        payload = {k: v for k, v in streams.items() if v}
        assert payload, "no traffic captured between client and echo"
        for key, data in payload.items():
            try:
                records = tls_records(data)
            except ValueError as err:
                raise AssertionError(f"{key}: not TLS on the wire: {err}") from None
            assert any(kind == 23 for kind, _ in records), key
        # the server proxies saw the client's identity
        for echo in echoes:
            inbound = [
                s
                for s in bed.metrics(echo)
                if s.name == "request_total" and s.labels.get("direction") == "inbound"
            ]
            assert any(
                s.labels.get("client_id") == CLIENT_ID
                and s.labels.get("tls") == "true"
                and s.value > 0
                for s in inbound
            ), inbound
        # the client's proxy balanced requests over the endpoints destination gave it
        outbound = [
            s
            for s in bed.metrics(client)
            if s.name == "response_total" and s.labels.get("direction") == "outbound"
        ]
        by_pod = {s.labels.get("dst_pod") for s in outbound if s.value > 0}
        assert by_pod >= {e["metadata"]["name"] for e in echoes}, by_pod
        # ... and it verified the servers' identity: both ends' identities are in the metrics
        to_echo = [s for s in outbound if s.labels.get("dst_service") == "echo" and s.value > 0]
        assert to_echo and all(
            s.labels.get("tls") == "true" and s.labels.get("server_id") == CLIENT_ID
            for s in to_echo
        ), to_echo  # echo runs as the namespace's default service account too

    step(bed, "mtls", body)


def test_diagnostics_proxy_metrics_shows_each_pod_and_the_client_identity(bed: Bed) -> None:
    bed.needs("mtls")

    def body() -> None:
        out = bed.lacewing("diagnostics", "proxy-metrics", "-n", APP_NS, "deploy/echo")
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        echoes = sorted(e["metadata"]["name"] for e in bed.pods(APP_NS, "echo"))
        blocks = out.stdout.split("#\n# POD ")[1:]
        headers = [block.split("\n", 1)[0] for block in blocks]
        assert headers == [f"{n} ({i} of {len(echoes)})" for i, n in enumerate(echoes, 1)]
        for block in blocks:  # each pod's own metrics, as its proxy serves them
            samples = parse(block.split("#\n", 1)[1])
            assert any(
                s.name == "request_total"
                and s.labels.get("direction") == "inbound"
                and s.labels.get("client_id") == CLIENT_ID
                and s.value > 0
                for s in samples
            ), block[:2000]
        wrong = bed.lacewing("diagnostics", "proxy-metrics", "-n", APP_NS, "echo")
        assert wrong.returncode == 2
        assert "is not deploy/NAME or pod/NAME" in wrong.stderr, wrong.stderr

    step(bed, "diagnostics proxy-metrics", body)


def test_check_proxy(bed: Bed) -> None:
    bed.needs("inject")

    def body() -> None:
        out = bed.lacewing("check", "--proxy", "-n", APP_NS, "--wait", "60s", timeout=120)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
        assert "Status check results are √" in out.stdout

    step(bed, "check --proxy", body)


# A meshed client whose proxy has no destination (the wiring bug of an earlier release): it
# sends plaintext to meshed pods, which `check --proxy` must name.
PLAIN_CLIENT = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: plain-client, namespace: {APP_NS}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: plain-client}}}}
  template:
    metadata: {{labels: {{app: plain-client}}}}
    spec:
      containers:
      - name: client
        image: testbed.local/client:1
        ports: [{{name: http, containerPort: 8081}}]
"""


def _failed(stdout: str) -> list[str]:
    return [line[2:] for line in stdout.splitlines() if line.startswith("\N{MULTIPLICATION SIGN} ")]


def test_check_names_each_fault_of_a_running_cluster_and_passes_when_healed(bed: Bed) -> None:
    """Each fault injected into the running test bed fails its check; healing passes again."""
    bed.needs("check --proxy")

    def check(*args: str, wait: str = "0") -> subprocess.CompletedProcess[str]:
        return bed.lacewing("check", *args, "--wait", wait, timeout=150)

    def healed(*args: str) -> None:
        out = check(*args, wait="90s")
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]

    def body() -> None:
        # 1. the injector unreachable from the API server while its pod runs and is ready (a
        #    wrong port in the webhook configuration): the API server's dry run admits a pod
        #    without the proxy (failurePolicy Ignore), which the check sees
        hook = "mutatingwebhookconfiguration/lacewing-lacewing-proxy-injector-webhook-config"
        wrong_port = '[{"op":"replace","path":"/webhooks/0/clientConfig/service/port","value":444}]'
        patched = bed.kubectl("patch", hook, "--type=json", "-p", wrong_port)
        assert patched.returncode == 0, patched.stderr
        out = check()
        assert out.returncode == 1
        assert _failed(out.stdout) == ["dry-run pods come back injected"], out.stdout
        bed.pipe(["upgrade"], ["apply"])  # the documented way back to the rendered manifests
        healed()
        # 2. a crash-looping component fails at once, not after the 5-minute wait
        patch = (
            '{"spec":{"template":{"spec":{"containers":[{"name":"policy",'
            '"args":["controller","no-such-component"]}]}}}}'
        )
        assert bed.kubectl("-n", CP, "patch", "deploy/lacewing-policy", "-p", patch).returncode == 0

        def crash_looping() -> bool:
            return any(
                (s.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
                for p in bed.pods(CP)
                for s in (p.get("status") or {}).get("containerStatuses") or []
            )

        wait_for("the policy controller to crash-loop", crash_looping, 60)
        started = time.monotonic()
        out = check(wait="5m")
        assert time.monotonic() - started < 60, "waited on a state that will not heal"
        assert out.returncode == 1
        assert "control plane pods are ready" in _failed(out.stdout), out.stdout
        assert "CrashLoopBackOff" in out.stdout and "will not heal by waiting" in out.stdout
        bed.pipe(["upgrade"], ["apply"])  # the documented way back to the rendered manifests
        healed()
        # 3. plaintext from a meshed proxy to meshed peers: named by check --proxy
        rendered = subprocess.run(
            [LACEWING, "inject", "--manual", "-"],
            input=PLAIN_CLIENT,
            capture_output=True,
            text=True,
            env=bed.env,
            timeout=60,
            check=False,
        )
        assert rendered.returncode == 0, rendered.stderr
        (deployment,) = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        containers = deployment["spec"]["template"]["spec"]["containers"]
        (proxy,) = [c for c in containers if c["name"] == "lacewing-proxy"]
        proxy["env"] = [e for e in proxy["env"] if e["name"] != "LACEWING_PROXY_DESTINATION_ADDR"]
        applied = bed.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
        assert applied.returncode == 0, applied.stderr
        (plain,) = wait_for(
            "the plaintext client to be ready",
            lambda: [p for p in bed.pods(APP_NS, "plain-client") if ready(p)],
            60,
        )
        assert len(bed.fetch(plain, "http://echo/plaintext", 4)) == 4
        out = check("--proxy", "-n", APP_NS)
        assert out.returncode == 1
        assert "data plane traffic to meshed peers is mTLS" in _failed(out.stdout), out.stdout
        assert f"pod {APP_NS}/{plain['metadata']['name']}:" in out.stdout
        # (a meshed proxy that was told nothing of its peer: Linkerd's label and reason)
        assert "with tls=no_identity (not_provided_by_service_discovery)" in out.stdout, out.stdout
        assert bed.kubectl("-n", APP_NS, "delete", "deploy/plain-client").returncode == 0
        wait_for(
            "the plaintext client to be gone", lambda: not bed.pods(APP_NS, "plain-client"), 60
        )
        healed("--proxy", "-n", APP_NS)

    step(bed, "check faults", body)


# docs/policy.md's walkthrough: only the client's service account may call echo.
INTRUDER = f"""
apiVersion: v1
kind: ServiceAccount
metadata: {{name: intruder, namespace: {APP_NS}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: intruder, namespace: {APP_NS}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: intruder}}}}
  template:
    metadata: {{labels: {{app: intruder}}}}
    spec:
      serviceAccountName: intruder
      containers:
      - name: client
        image: testbed.local/client:1
        ports: [{{name: http, containerPort: 8081}}]
        readinessProbe: {{httpGet: {{path: /, port: http}}, periodSeconds: 2}}
"""
ONLY_CLIENT = f"""
apiVersion: policy.lacewing.io/v1beta1
kind: Server
metadata: {{name: echo-http, namespace: {APP_NS}}}
spec:
  podSelector: {{matchLabels: {{app: echo}}}}
  port: http
  proxyProtocol: HTTP/1
---
apiVersion: policy.lacewing.io/v1beta1
kind: MeshTLSAuthentication
metadata: {{name: shop-client, namespace: {APP_NS}}}
spec:
  identityRefs: [{{kind: ServiceAccount, name: default}}]
---
apiVersion: policy.lacewing.io/v1beta1
kind: AuthorizationPolicy
metadata: {{name: echo-from-client, namespace: {APP_NS}}}
spec:
  targetRef: {{group: policy.lacewing.io, kind: Server, name: echo-http}}
  requiredAuthenticationRefs:
  - {{group: policy.lacewing.io, kind: MeshTLSAuthentication, name: shop-client}}
"""


def _counter(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_a_server_and_authorization_policy_admit_only_one_service_account(bed: Bed) -> None:
    """With real pods: the allowed client gets 200, another meshed client gets 403, and the
    echo app never sees the denied requests (its own log of what it received)."""
    bed.needs("mtls")

    def body() -> None:
        applied = bed.kubectl("apply", "-f", "-", input=INTRUDER)
        assert applied.returncode == 0, applied.stderr

        def intruder_meshed() -> list[dict[str, Any]]:
            pods = bed.pods(APP_NS, "intruder")
            return [
                p
                for p in pods
                if ready(p) and "lacewing-proxy" in {c["name"] for c in p["spec"]["containers"]}
            ]

        (intruder,) = wait_for("the intruder pod, injected and ready", intruder_meshed, 60)
        (client,) = bed.pods(APP_NS, "client")
        # before any Server: the default policy (all-unauthenticated) lets both in
        assert {c for c, _ in bed.fetch(intruder, "http://echo/before", 2)} == {200}
        applied = bed.kubectl("apply", "-f", "-", input=ONLY_CLIENT)
        assert applied.returncode == 0, applied.stderr

        def denied() -> bool:
            return {c for c, _ in bed.fetch(intruder, "http://echo/probe-denied", 2)} == {403}

        wait_for("the intruder to be refused", denied, 20)
        allowed = bed.fetch(client, "http://echo/allowed-marker", 10)
        refused = bed.fetch(intruder, "http://echo/denied-marker", 10)
        assert [c for c, _ in allowed] == [200] * 10, allowed[:2]
        assert [c for c, _ in refused] == [403] * 10, refused[:2]
        echoes = bed.pods(APP_NS, "echo")
        assert all(ready(e) for e in echoes), "kubelet probes must stay allowed"
        seen = "".join(bed.log(APP_NS, e["metadata"]["name"], "echo") for e in echoes)
        assert seen.count("seen GET /allowed-marker") == 10, seen[-500:]
        assert "denied-marker" not in seen and "probe-denied" not in seen
        assert "seen GET /before" in seen  # the log does record what gets through
        samples = [s for e in echoes for s in bed.metrics(e)]
        intruder_id = f"intruder.{APP_NS}.serviceaccount.identity.lacewing.cluster.local"
        assert _counter(samples, "inbound_http_authz_deny_total", srv_name="echo-http") >= 10
        assert (
            _counter(
                samples,
                "inbound_http_authz_allow_total",
                srv_name="echo-http",
                authz_name="echo-from-client",
            )
            >= 10
        )
        allowed_by_server = [
            s.labels
            for s in samples
            if s.name == "inbound_http_authz_allow_total"
            and s.labels.get("srv_name") == "echo-http"
        ]
        assert allowed_by_server and intruder_id not in str(allowed_by_server)
        # what the CLI says: the compiled policy of the workload, and one proxy's own
        authz = bed.lacewing("authz", "-n", APP_NS, "deploy/echo")
        assert authz.returncode == 0, authz.stderr
        assert any(
            line.split()[:3] == ["8080", "server/echo-http", "authorizationpolicy/echo-from-client"]
            for line in authz.stdout.splitlines()
        ), authz.stdout
        echo = echoes[0]["metadata"]["name"]
        shown = bed.lacewing("diagnostics", "policy", "-n", APP_NS, echo, "8080")
        assert shown.returncode == 0, shown.stderr
        first, *table = shown.stdout.splitlines()
        assert first == (
            f"pod {APP_NS}/{echo} port 8080: from the policy controller (stream connected)"
        )
        assert ["8080", "server/echo-http", "authorizationpolicy/echo-from-client", CLIENT_ID] in [
            line.split() for line in table
        ], shown.stdout

    step(bed, "policy", body)


def test_uninstall_leaves_nothing_running(bed: Bed) -> None:
    bed.needs("install")

    def body() -> None:
        bed.pipe(["uninstall"], ["delete", "--wait=false"])

        def gone() -> bool:
            left = [r for r in list(bed.node.runners.values()) if r.namespace == CP]
            return not left and not bed.api.list("v1", "Pod", CP)

        wait_for("the control plane's pods and processes to be gone", gone, 90)
        assert bed.api.get("v1", "Namespace", CP) is None
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            assert not bed.api.list("admissionregistration.k8s.io/v1", kind), kind
        crds = bed.api.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        assert not [c for c in crds if "lacewing" in c["metadata"]["name"]]

    step(bed, "uninstall", body)
