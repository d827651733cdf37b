"""`viz install | kubectl apply -f -`, `viz check`, `viz stat`, `viz uninstall` on the API test bed.

The test bed runs no container images, so the installed Prometheus pod is an object only;
its port 9090 is routed (the test bed's `pods/proxy`) to a REAL Prometheus started here on
127.0.0.1, which scrapes a stand-in for one meshed pod's admin port: an HTTP server whose
inbound `response_total` grows by exactly 10 successes and 2 failures per second. Debian's
Prometheus has no Kubernetes discovery, so it finds that target through a file carrying the
pod discovery's labels (`lacewing.viz.scrapeconfig.file_sd_targets`) and relabels it with
the same rules the installed configuration uses. `viz stat` then goes the Kubernetes way:
kubeconfig -> API server -> pod proxy -> Prometheus, and MESHED from the API's pods.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from lacewing.cli.commands.viz import StatOptions, run_stat
from lacewing.cli.commands.viz_dashboard import DashboardOptions, dashboard_source
from lacewing.cli.commands.viz_install import (
    VizCheckOptions,
    VizInstallOptions,
    run_check,
    run_install,
    run_uninstall,
)
from lacewing.cli.context import GlobalOptions, Output
from lacewing.viz.dashboard.api import Api
from lacewing.viz.scrapeconfig import ProxyTarget, file_sd_targets, local_config

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("kubectl") is None,
    reason="install Debian package prometheus (and kubectl)",
)

OK_PER_S, FAIL_PER_S = 10, 2
SHOP = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web, lacewing.io/control-plane-ns: lacewing, lacewing.io/proxy-deployment: web}
    spec:
      containers: [{name: web, image: web:1}]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Exporter(BaseHTTPRequestHandler):
    started = time.monotonic()

    def do_GET(self) -> None:
        elapsed = time.monotonic() - self.started
        base = 'direction="inbound",authority="web.shop:80",target_addr="10.0.0.5:80",tls="true"'
        lines = [
            f'response_total{{{base},status_code="200",classification="success"}} '
            f"{int(OK_PER_S * elapsed)}",
            f'response_total{{{base},status_code="500",classification="failure"}} '
            f"{int(FAIL_PER_S * elapsed)}",
        ]
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("prom")
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    target = ProxyTarget(f"127.0.0.1:{exporter.server_port}", "shop", "web-0", "deployment", "web")
    (tmp / "targets.json").write_text(json.dumps(file_sd_targets([target], "lacewing")))
    (tmp / "prometheus.yml").write_text(
        yaml.safe_dump(local_config(str(tmp / "targets.json"), "lacewing", "1s"))
    )
    port = _free_port()
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={tmp / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        exporter.shutdown()


def _run(fn: Any, options: Any, g: GlobalOptions) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = fn(options, g, Output(out=out, err=err))
    return code, out.getvalue(), err.getvalue()


def test_install_check_stat_uninstall(kube_api: Any, prometheus: str, tmp_path: Path) -> None:
    g = GlobalOptions(kubeconfig=str(kube_api.kubeconfig))
    code, out, _ = _run(run_check, VizCheckOptions(), g)
    assert code == 1 and "\N{MULTIPLICATION SIGN} lacewing-viz Namespace exists" in out, out

    code, manifest, _ = _run(run_install, VizInstallOptions(), g)
    assert code == 0
    # viz extends an installed control plane: tap's Role goes in its namespace
    assert kube_api.kubectl("create", "namespace", "lacewing").returncode == 0
    applied = kube_api.kubectl("apply", "-f", "-", input=manifest)
    assert applied.returncode == 0, applied.stderr
    assert "deployment.apps/prometheus created" in applied.stdout
    assert kube_api.kubectl("apply", "-f", "-", input=SHOP).returncode == 0
    kube_api.kubelet.sync()
    kube_api.kubelet.mark_ready()
    pods = kube_api.list("v1", "Pod", "lacewing-viz")
    (pod,) = [p["metadata"]["name"] for p in pods if p["metadata"]["name"].startswith("prom")]
    kube_api.route_pod_proxy("lacewing-viz", pod, 9090, prometheus)

    # Prometheus needs a few scrapes of the stand-in before the checks and rates are there
    deadline = time.monotonic() + 20
    while True:
        code, out, _ = _run(run_check, VizCheckOptions(), g)
        if (code == 0 and "\N{DOUBLE EXCLAMATION MARK}" not in out) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert out.splitlines() == [
        "lacewing-viz",
        "------------",
        "√ lacewing-viz Namespace exists",
        "√ lacewing-viz ConfigMap exists",
        "√ prometheus pod is running",
        "√ can query Prometheus",
        "√ tap pod is running",
        "√ web pod is running",
        "√ Prometheus scrapes the lacewing proxies",
        "",
        "Status check results are √",
    ], out
    time.sleep(6)  # a window of scrapes for increase()
    options = StatOptions(resource="deploy", namespace="shop", window=5.0, output="json")
    code, out, err = _run(run_stat, options, g)
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["name"], row["meshed"]) == ("web", "1/1")
    assert abs(row["rps"] - (OK_PER_S + FAIL_PER_S)) <= 0.05 * (OK_PER_S + FAIL_PER_S), row
    assert abs(row["success"] - OK_PER_S / (OK_PER_S + FAIL_PER_S)) <= 0.02, row
    # --prometheus-url names the same Prometheus directly
    direct = StatOptions(resource="deploy", namespace="shop", window=5.0, output="json",
                         prometheus_url=prometheus)  # fmt: skip
    code, out, err = _run(run_stat, direct, g)
    assert code == 0 and json.loads(out)[0]["name"] == "web", err
    # the dashboard's answers on Kubernetes: the same Prometheus through the pod proxy
    api = Api(dashboard_source(DashboardOptions(), g))
    status, _, body = api.handle("/api/workloads?ns=shop&window=5s")
    assert status == 200, body
    (dash,) = json.loads(body)["rows"]
    assert (dash["name"], dash["meshed"]) == ("web", "1/1"), dash
    assert abs(dash["rps"] - (OK_PER_S + FAIL_PER_S)) <= 0.05 * (OK_PER_S + FAIL_PER_S), dash

    code, skeletons, _ = _run(run_uninstall, VizInstallOptions(), g)
    assert code == 0
    kinds = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(skeletons) if d]
    assert kinds == [
        ("Namespace", "lacewing-viz"),
        ("ClusterRole", "lacewing-viz-prometheus"),
        ("ClusterRoleBinding", "lacewing-viz-prometheus"),
        ("ClusterRole", "lacewing-viz-tap"),
        ("ClusterRoleBinding", "lacewing-viz-tap"),
        ("Role", "lacewing-viz-tap-trust-roots"),
        ("RoleBinding", "lacewing-viz-tap-trust-roots"),
        ("ClusterRole", "lacewing-viz-web"),
        ("ClusterRoleBinding", "lacewing-viz-web"),
    ]
    deleted = kube_api.kubectl("delete", "-f", "-", input=skeletons)
    assert deleted.returncode == 0, deleted.stderr
    code, _, err = _run(run_uninstall, VizInstallOptions(), g)
    assert code == 0 and "lacewing-viz is not installed" in err
