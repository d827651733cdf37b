"""`viz tap` and `viz dashboard` on Kubernetes: the API test bed with its kubelet running every pod.

The path a user takes: `lacewing install | kubectl apply`, the shop app meshed by the injector,
`lacewing viz install | kubectl apply`, then
- `lacewing viz tap deploy/echo -n shop -o json`: the CLI -> API server (pods/proxy) -> the tap
  pod of lacewing-viz, which got the tap identity's certificate from identity and taps both
  echo proxies on 4190 over mutual TLS. Requests the client app makes during the test, to a
  path only this test uses, must come out, every one, with the client's and echo's identities;
- `lacewing viz dashboard`: a local port forwarding to the web pod of lacewing-viz through the
  API server; its page and JSON answer there, and its JSON (from a real Prometheus, Debian's,
  which the test runs in the node's namespace and the install is pointed at with
  `prometheusUrl`: Debian's build has no Kubernetes discovery) shows the shop's workloads,
  and its live tap (`api/tap`: here -> API server -> web pod -> API server -> tap pod ->
  proxies) the requests the client makes to a path only this test uses, with identities.
Needs root, kubectl and the Debian package prometheus.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.kubeapi import KubeAPI, start_kube_api
from tests.support.kubeapi.kubelet.node import NodeRuntime

from lacewing.local import netns
from lacewing.viz.scrapeconfig import ProxyTarget, file_sd_targets, local_config

pytestmark = [
    pytest.mark.root,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        shutil.which("kubectl") is None or shutil.which("prometheus") is None,
        reason="needs kubectl and Prometheus (Debian: apt-get install prometheus; kubectl from "
        "https://dl.k8s.io or the kubernetes-client package)",
    ),
]

LACEWING = str(Path(sys.executable).with_name("lacewing"))
SHOP = (Path(__file__).parents[2] / "support/kubeapi/kubelet/shop.yaml").read_text()
CLIENT_ID = "default.shop.serviceaccount.identity.lacewing.cluster.local"
PROM_PORT = 19090


class Bed:
    def __init__(self, api: KubeAPI, node: NodeRuntime, env: dict[str, str]) -> None:
        self.api, self.node, self.env = api, node, env

    def lacewing(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([LACEWING, *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout, check=False)  # fmt: skip

    def pipe(self, *args: str) -> None:
        rendered = self.lacewing(*args)
        assert rendered.returncode == 0, rendered.stderr
        applied = self.api.kubectl("apply", "-f", "-", input=rendered.stdout, timeout=60)
        assert applied.returncode == 0, applied.stderr

    def pods(self, ns: str, label: str | None = None) -> list[dict[str, Any]]:
        pods = self.api.list("v1", "Pod", ns)
        return [p for p in pods if label is None or label in _labels(p)]


def _labels(pod: dict[str, Any]) -> list[str]:
    return [f"{k}={v}" for k, v in (pod["metadata"].get("labels") or {}).items()]


def ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_for(what: str, fn: Callable[[], Any], timeout: float,
             why: Callable[[], str] = lambda: "") -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{why()}")
        time.sleep(0.25)


def _meshed(pod: dict[str, Any]) -> bool:
    return "lacewing-proxy" in {c["name"] for c in pod["spec"]["containers"]}


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    tmp = tmp_path_factory.mktemp("viztb")
    api = start_kube_api(tmp)
    node = NodeRuntime(api, tmp / "node")
    env = {**os.environ, "KUBECONFIG": str(api.kubeconfig), "HOME": str(tmp),
           "LACEWING_SKIP_VERSION_CHECK": "1"}  # fmt: skip
    env.pop("LACEWING_LOCAL_CLUSTER", None)
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        node.start()
        # Prometheus in the node's namespace, on the bridge address every pod can reach
        gateway = node.network.gateway
        prom_dir = tmp / "prometheus"
        prom_dir.mkdir()
        (prom_dir / "targets.json").write_text("[]\n")
        (prom_dir / "controllers.json").write_text("[]\n")
        config = local_config(str(prom_dir / "targets.json"), "lacewing", "1s",
                              str(prom_dir / "controllers.json"))  # fmt: skip
        (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        argv = [str(shutil.which("prometheus")), f"--config.file={prom_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={prom_dir / 'data'}",
                f"--web.listen-address={gateway}:{PROM_PORT}"]  # fmt: skip
        with (prom_dir / "log").open("ab") as log:
            prometheus = subprocess.Popen(netns.exec_argv(node.network.node, argv),
                                          stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)  # fmt: skip
        b = Bed(api, node, env)
        b.prom_dir = prom_dir  # type: ignore[attr-defined]
        b.prom_url = f"http://{gateway}:{PROM_PORT}"  # type: ignore[attr-defined]
        yield b
    finally:
        if prometheus is not None:
            os.killpg(prometheus.pid, 15)
            prometheus.wait(timeout=10)
        node.stop()
        api.close()
    left = [n for n in os.listdir("/run/netns") if n.startswith(node.prefix)]
    assert not left, f"namespaces left behind: {left}"


@pytest.fixture(scope="module")
def meshed(bed: Bed) -> Bed:
    """The control plane, the shop app meshed, viz installed and its tap and web pods ready."""
    bed.pipe("install", "--crds")
    bed.pipe("install")
    out = bed.lacewing("check", "--wait", "120s", timeout=180)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    applied = bed.api.kubectl("apply", "-f", "-", input=SHOP, timeout=60)
    assert applied.returncode == 0, applied.stderr
    assert bed.api.kubectl("annotate", "ns", "shop", "lacewing.io/inject=enabled").returncode == 0
    bed.pipe("viz", "install", "--set", f"prometheusUrl={bed.prom_url}")  # type: ignore[attr-defined]

    def shop_meshed() -> bool:
        pods = bed.pods("shop")
        return len(pods) == 3 and all(ready(p) and _meshed(p) for p in pods)

    def viz_ready() -> bool:
        pods = bed.pods("lacewing-viz")
        return len(pods) == 2 and all(ready(p) for p in pods)

    assert bed.api.kubectl("rollout", "restart", "-n", "shop", "deploy").returncode == 0
    wait_for("3 meshed shop pods, ready", shop_meshed, 120)

    def viz_logs() -> str:
        lines = []
        for pod in bed.pods("lacewing-viz"):
            name, (container, *_) = pod["metadata"]["name"], pod["spec"]["containers"]
            lines += [f"{name}: {pod.get('status')}",
                      bed.node.logs("lacewing-viz", name, container["name"])]  # fmt: skip
        return "\n".join(lines)

    wait_for("the tap and web pods of lacewing-viz, ready", viz_ready, 120, viz_logs)
    bed.node.settle()
    # Prometheus scrapes the shop's proxies, labelled as Kubernetes pod discovery labels them
    targets = [
        ProxyTarget(f"{p['status']['podIP']}:4191", "shop", p["metadata"]["name"], "deployment",
                    p["metadata"]["labels"]["app"])
        for p in bed.pods("shop")
    ]  # fmt: skip
    path = bed.prom_dir / "targets.json"  # type: ignore[attr-defined]
    path.write_text(json.dumps(file_sd_targets(targets, "lacewing")))
    return bed


def fetch(bed: Bed, url: str, n: int) -> list[tuple[int, str]]:
    (client,) = bed.pods("shop", "app=client")
    space = bed.node.runner("shop", client["metadata"]["name"]).netns
    code, body = netns.in_netns(
        space, lambda: netns.http_get("127.0.0.1", 8081, f"/fetch?url={url}&n={n}", timeout=90),
        timeout=100,
    )  # fmt: skip
    assert code == 200, body[:300]
    return [(s, b) for s, b in json.loads(body)]


def test_tap_shows_the_requests_made_during_the_test_with_their_identities(meshed: Bed) -> None:
    bed = meshed
    marker = f"/tapped-{uuid.uuid4().hex[:8]}"
    tap = subprocess.Popen(
        [LACEWING, "viz", "tap", "deploy/echo", "-n", "shop", "-o", "json", "--path", marker,
         "--duration", "25s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=bed.env,
    )  # fmt: skip
    assert tap.stderr is not None
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(tap.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        wait_for("viz tap to open its taps", lambda: any("tapping" in e for e in err) or
                 tap.poll() is not None, 60)  # fmt: skip
        assert tap.poll() is None, "".join(err)
        assert "tapping 2 pod(s) of deploy/echo in shop through lacewing-viz/tap-" in "".join(err)
        answers = fetch(bed, f"http://echo.shop.svc.cluster.local{marker}", 12)
        assert [s for s, _ in answers] == [200] * 12, answers
        stdout, _ = tap.communicate(timeout=60)
    finally:
        if tap.poll() is None:
            tap.kill()
            tap.wait()
    assert tap.returncode == 0, "".join(err) + stdout
    events = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    inbound = [e for e in events if e["direction"] == "inbound"]
    echo_pods = {p["metadata"]["name"] for p in bed.pods("shop", "app=echo")}
    # every request the client made, seen by the echo proxy that served it, and nothing else
    assert len(inbound) == 12, stdout
    assert all(e["path"] == marker and e["status"] == 200 for e in inbound), stdout
    assert {e["pod"] for e in inbound} <= echo_pods, stdout
    for e in inbound:
        assert e["source"]["identity"] == CLIENT_ID, e
        assert e["destination"]["identity"] == CLIENT_ID, e  # echo runs as `default` too
        assert e["destination"]["deployment"] == "echo", e
        assert e["tls"] == "true", e


def test_the_tap_component_refuses_whoever_lacks_the_token(meshed: Bed) -> None:
    """Any pod can reach the tap pod's port: without the Secret's token it gets a 401."""
    (tap,) = meshed.pods("lacewing-viz", "app.kubernetes.io/name=tap")
    ip = tap["status"]["podIP"]
    code, body = netns.in_netns(
        meshed.node.network.node,
        lambda: netns.http_get(ip, 8089, "/tap?resource=deploy/echo&namespace=shop", timeout=10),
    )  # fmt: skip
    assert code == 401, body
    assert b"no valid X-Lacewing-Tap-Token header" in body, body


def test_tap_errors_are_one_line(meshed: Bed) -> None:
    out = meshed.lacewing("viz", "tap", "deploy/nope", "-n", "shop", "--duration", "2s")
    assert out.returncode != 0
    assert "no running meshed pod of deploy/nope in namespace 'shop'" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_dashboard_of_the_cluster_through_the_api_server(meshed: Bed) -> None:
    bed = meshed
    answers = fetch(bed, "http://echo.shop.svc.cluster.local/dash", 20)
    assert [s for s, _ in answers] == [200] * 20
    (web,) = bed.pods("lacewing-viz", "app.kubernetes.io/name=web")
    dash = subprocess.Popen(
        [LACEWING, "viz", "dashboard", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=bed.env,
    )  # fmt: skip
    try:
        assert dash.stdout is not None
        line = dash.stdout.readline()
        match = re.fullmatch(r"lacewing dashboard: (http://127\.0\.0\.1:\d+/)\n", line)
        assert match, line + (dash.stderr.read() if dash.poll() is not None else "")  # type: ignore[union-attr]
        url = match.group(1)
        with urllib.request.urlopen(url, timeout=20) as page:
            assert page.status == 200 and b"app.js" in page.read()
        # the same page straight through the API server's pod proxy path
        raw = bed.api.kubectl("get", "--raw",
                              f"/api/v1/namespaces/lacewing-viz/pods/{web['metadata']['name']}"
                              ":8084/proxy/", timeout=30)  # fmt: skip
        assert raw.returncode == 0 and "app.js" in raw.stdout, raw.stderr

        def workloads() -> dict[str, Any] | None:
            with urllib.request.urlopen(url + "api/workloads?ns=shop&window=1m", timeout=20) as a:
                data = json.loads(a.read())
            rows = {r["name"]: r for r in data["rows"]}
            echo = rows.get("echo") or {}
            return data if (echo.get("requests") or 0) >= 20 else None

        data = wait_for("the shop's requests in the dashboard's JSON", workloads, 60)
        rows = {r["name"]: r for r in data["rows"]}
        assert set(rows) == {"echo", "client"}, data
        assert rows["echo"]["meshed"] == "2/2" and rows["client"]["meshed"] == "1/1", data
        # (TLS is below 100%: the kubelet's readiness probes reach echo's proxy in plaintext)
        assert rows["echo"]["success"] == 1.0, data
        assert data["prometheus"] == bed.prom_url, data  # type: ignore[attr-defined]
        with urllib.request.urlopen(url + "api/edges?ns=shop", timeout=20) as a:
            found = json.loads(a.read())["edges"]
        assert [(e["src"], e["dst"], e["secured"], e["server_id"]) for e in found] == [
            ("client", "echo", True, CLIENT_ID)
        ], found
    finally:
        dash.terminate()
        dash.wait(timeout=15)


def test_the_dashboards_live_tap_through_the_web_pod(meshed: Bed) -> None:
    """The browser's path: here -> API server -> web pod -> API server -> tap pod -> proxies."""
    bed = meshed
    marker = f"/dash-tapped-{uuid.uuid4().hex[:8]}"
    dash = subprocess.Popen(
        [LACEWING, "viz", "dashboard", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=bed.env,
    )  # fmt: skip
    try:
        assert dash.stdout is not None
        line = dash.stdout.readline()
        match = re.fullmatch(r"lacewing dashboard: (http://127\.0\.0\.1:\d+/)\n", line)
        assert match, line
        query = (
            f"api/tap?namespace=shop&resource=deploy/echo&path={marker}&duration=60s&max_events=6"
        )
        with urllib.request.urlopen(match.group(1) + query, timeout=60) as answer:
            assert answer.headers["Content-Type"] == "application/x-ndjson"
            first = json.loads(answer.readline())
            assert len(first["tapping"]) == 2, first  # both echo replicas
            assert first["through"].startswith("lacewing-viz/tap-"), first
            answers = fetch(bed, f"http://echo.shop.svc.cluster.local{marker}", 6)
            assert [s for s, _ in answers] == [200] * 6, answers
            lines = [json.loads(x) for x in answer.read().decode().splitlines() if x.strip()]
    finally:
        dash.terminate()
        dash.wait(timeout=15)
    *events, end = lines
    assert end == {"end": "max_events", "events": 6}, lines
    echo_pods = {p["metadata"]["name"] for p in bed.pods("shop", "app=echo")}
    for e in events:
        assert (e["direction"], e["path"], e["status"], e["tls"]) == (
            "inbound", marker, 200, "true"), e  # fmt: skip
        assert e["pod"] in echo_pods and e["destination"]["deployment"] == "echo", e
        assert e["source"]["identity"] == CLIENT_ID, e
