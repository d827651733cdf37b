"""Pods created through the test bed's API are injected by the real webhook over HTTPS."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
from tests.integration.injector.conftest import ControlPlane, namespace, pod, write_tls

from lacewing.install import sidecar

ENABLED = {"lacewing.io/inject": "enabled"}
SKIPPED = "lacewing.io/inject-skipped"
# The real entry point (`lacewing.cli.main.main`, which turns errors into one line).
LACEWING = [sys.executable, "-m", "lacewing.cli.main"]


def _names(obj: dict[str, Any], key: str = "containers") -> list[str]:
    return [c["name"] for c in obj["spec"].get(key) or []]


async def test_pod_in_annotated_namespace_is_injected_and_valid(
    control_plane: ControlPlane,
) -> None:
    cp = control_plane
    await cp.create(namespace("shop", ENABLED))
    stored = await cp.create(pod("shop"))
    assert _names(stored) == ["lacewing-proxy", "web"]
    assert _names(stored, "initContainers") == ["lacewing-init"]
    assert stored["metadata"]["labels"][sidecar.PROXY_VERSION_LABEL]
    assert stored["metadata"]["annotations"][sidecar.PROXY_VERSION_LABEL]
    # what is stored (with the server's defaults) is a valid Pod for both ends of support
    for version in ("1.28", "1.34"):
        kubernetes_validate.validate(copy.deepcopy(stored), version, strict=True)
    # the trust anchors the proxy gets are the control plane's, inlined outside its namespace
    env = {e["name"]: e for e in stored["spec"]["containers"][0]["env"]}
    roots = cp.cluster.get("v1", "ConfigMap", sidecar.TRUST_ROOTS_CONFIG_MAP, "lacewing")
    assert roots is not None
    expected = roots["data"][sidecar.TRUST_ROOTS_KEY]
    assert env["LACEWING_IDENTITY_TRUST_ANCHORS"]["value"] == expected


async def test_pods_left_alone_with_the_reason(control_plane: ControlPlane) -> None:
    cp = control_plane
    await cp.create(namespace("plain"))
    await cp.create(namespace("shop", ENABLED))
    cases = [
        ("plain", "unannotated", None, False, "injection-not-requested"),
        ("shop", "opted-out", {"lacewing.io/inject": "disabled"}, False, "injection-not-requested"),
        ("shop", "host", None, True, "host-network"),
    ]
    for ns, name, notes, host, reason in cases:
        stored = await cp.create(pod(ns, name, notes, host))
        assert _names(stored) == ["web"] and "initContainers" not in stored["spec"], name
        assert stored["metadata"]["annotations"][SKIPPED].startswith(reason + ":"), name
    # kube-system and the control plane's namespace are not even sent to the webhook
    for ns in ("kube-system", "lacewing"):
        stored = await cp.create(pod(ns, "system", ENABLED))
        assert _names(stored) == ["web"]
        assert SKIPPED not in stored["metadata"]["annotations"]
    assert cp.server.admission.decisions == {"injection-not-requested": 2, "host-network": 1}


async def test_deployment_pods_are_injected_with_workload_labels(
    control_plane: ControlPlane,
) -> None:
    cp = control_plane
    await cp.create(namespace("shop", {**ENABLED, "config.lacewing.io/proxy-log-level": "warn"}))
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    await cp.run(lambda: cp.cluster.apply(deploy))
    await cp.run(cp.api.kubelet.sync)
    pods = cp.cluster.list("v1", "Pod", "shop")
    assert len(pods) == 2
    for p in pods:
        assert _names(p) == ["lacewing-proxy", "web"]
        assert p["metadata"]["labels"]["lacewing.io/proxy-deployment"] == "web"
        env = {e["name"]: e.get("value") for e in p["spec"]["containers"][0]["env"]}
        assert env["LACEWING_PROXY_LOG_LEVEL"] == "warn"
        assert p["metadata"]["annotations"]["config.lacewing.io/proxy-log-level"] == "warn"


async def test_a_down_injector_never_blocks_pod_creation(control_plane: ControlPlane) -> None:
    cp = control_plane
    await cp.create(namespace("shop", ENABLED))
    await cp.server.stop()
    stored = await cp.create(pod("shop"))
    assert _names(stored) == ["web"]  # failurePolicy Ignore


async def test_the_controller_command_serves_the_webhook(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """`lacewing controller proxy-injector` as its own process, stopped with SIGTERM."""
    cp = control_plane
    await cp.server.stop()
    tls = tmp_path / "cmd-tls"
    write_tls(cp.cluster, tls)
    args = ["--kubeconfig", str(cp.api.kubeconfig), "--tls-dir", str(tls)]
    proc = subprocess.Popen(
        [
            *LACEWING,
            "-L",
            "lacewing",
            "controller",
            "proxy-injector",
            *args,
            "--listen-addr",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    try:
        assert proc.stdout is not None
        line = await cp.run(proc.stdout.readline)
        assert "proxy injector for namespace lacewing listening on 127.0.0.1:" in line, line + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        )
        port = int(line.rsplit(":", 1)[1])
        cp.api.route_webhook(
            "lacewing", "lacewing-proxy-injector", 443, f"https://127.0.0.1:{port}"
        )
        await cp.create(namespace("shop", ENABLED))
        stored = await cp.create(pod("shop"))
        assert _names(stored) == ["lacewing-proxy", "web"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code_ = await cp.run(lambda: proc.wait(timeout=10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert code_ == 0


async def test_the_command_refuses_to_start_without_install(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*LACEWING, "controller", "proxy-injector", "--tls-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: cannot read the webhook certificate")
    assert "Traceback" not in proc.stderr


async def test_the_user_path_with_kubectl(control_plane: ControlPlane, tmp_path: Path) -> None:
    """annotate the namespace, `lacewing inject | kubectl apply`, the rollout's pods are meshed."""
    import io

    from lacewing.cli.commands.inject import InjectOptions, run_inject
    from lacewing.cli.context import GlobalOptions, Output

    cp = control_plane
    done = await cp.run(lambda: cp.api.kubectl("create", "namespace", "shop"))
    assert done.returncode == 0, done.stderr
    manifest = tmp_path / "web.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n  selector: {matchLabels: {app: web}}\n  template:\n"
        "    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: web, image: 'nginx:1.27'}]}\n"
    )
    out = io.StringIO()
    run_inject(InjectOptions((str(manifest),)), GlobalOptions(), Output(out, io.StringIO()))
    done = await cp.run(lambda: cp.api.kubectl("apply", "-f", "-", input=out.getvalue()))
    assert done.returncode == 0, done.stderr
    await cp.run(cp.api.kubelet.sync)
    (web,) = cp.cluster.list("v1", "Pod", "shop")
    assert _names(web) == ["lacewing-proxy", "web"]  # annotated workload, plain namespace

    native = "config.alpha.lacewing.io/proxy-enable-native-sidecar=true"
    args = ("annotate", "ns", "shop", "lacewing.io/inject=enabled", native)
    done = await cp.run(lambda: cp.api.kubectl(*args))
    assert done.returncode == 0, done.stderr
    job_pod = pod("shop", "job")
    stored = await cp.create(job_pod)
    assert _names(stored) == ["web"]
    assert _names(stored, "initContainers") == ["lacewing-init", "lacewing-proxy"]
    assert stored["spec"]["initContainers"][1]["restartPolicy"] == "Always"
    kubernetes_validate.validate(copy.deepcopy(stored), "1.34", strict=True)


async def test_manual_inject_uses_the_cluster_values(control_plane: ControlPlane) -> None:
    import io

    import yaml

    from lacewing.cli.commands.inject import InjectOptions, run_inject
    from lacewing.cli.context import GlobalOptions, Output

    cp = control_plane
    the_pod = pod("shop")
    out = io.StringIO()
    g = GlobalOptions(kubeconfig=str(cp.api.kubeconfig))
    options = InjectOptions(("-",), manual=True)
    stdin = io.StringIO(yaml.safe_dump(the_pod))
    await cp.run(lambda: run_inject(options, g, Output(out, io.StringIO()), stdin=stdin))
    (doc,) = [d for d in yaml.safe_load_all(out.getvalue()) if d]
    env = {e["name"]: e for e in doc["spec"]["containers"][0]["env"]}
    assert env["LACEWING_IDENTITY_TRUST_ANCHORS"]["value"] == cp.creds.trust_anchors_pem
