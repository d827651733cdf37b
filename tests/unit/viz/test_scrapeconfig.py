"""The proxies' scrape configuration: Prometheus' own checker accepts it, and the relabelling
turns the (Kubernetes-style) discovery labels into namespace/pod/deployment."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lacewing.viz.scrapeconfig import (
    ProxyTarget,
    file_sd_targets,
    kubernetes_controller_job,
    kubernetes_proxy_job,
    local_config,
    proxy_relabel_configs,
)


def _relabel(labels: dict[str, str], rules: list[dict[str, object]]) -> dict[str, str] | None:
    """Prometheus' relabelling for the actions we use (keep, replace, labelmap, labeldrop)."""
    out = dict(labels)
    for rule in rules:
        regex = re.compile(f"^(?:{rule.get('regex', '(.*)')})$")
        action = rule.get("action", "replace")
        sources = ";".join(out.get(str(n), "") for n in rule.get("source_labels", []))  # type: ignore[attr-defined]
        if action == "keep" and not regex.match(sources):
            return None
        if action == "replace" and (m := regex.match(sources)) and m.group(0):
            out[str(rule["target_label"])] = m.expand(str(rule.get("replacement", r"\1")))
        if action == "labelmap":
            for name, value in list(out.items()):
                if m := regex.match(name):
                    out[m.expand(r"\1")] = value
        if action == "labeldrop":
            out = {k: v for k, v in out.items() if not regex.match(k)}
    return {k: v for k, v in out.items() if not k.startswith("__")}


def test_local_targets_relabel_like_kubernetes_pods() -> None:
    targets = file_sd_targets(
        [ProxyTarget("10.42.0.12:4191", "shop", "web-0", "deployment", "web")], "lacewing"
    )
    assert targets[0]["targets"] == ["10.42.0.12:4191"]
    labels = _relabel(targets[0]["labels"], proxy_relabel_configs("lacewing"))
    assert labels == {
        "namespace": "shop", "pod": "web-0", "deployment": "web", "control_plane_ns": "lacewing",
    }  # fmt: skip
    # a pod of another control plane, or another port, is not kept
    assert _relabel(targets[0]["labels"], proxy_relabel_configs("other")) is None


@pytest.mark.skipif(shutil.which("promtool") is None, reason="install Debian package prometheus")
def test_promtool_accepts_the_local_configuration(tmp_path: Path) -> None:
    # Debian's promtool is built without Kubernetes discovery (`kubernetes_sd_configs` is
    # unknown to it), so only the local file is checked here; the Kubernetes job differs only
    # in its discovery section (test below) and is checked by the upstream image at start.
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps(file_sd_targets([], "lacewing")))
    configs = {"local.yml": local_config(str(targets), "lacewing", "1s")}
    for name, config in configs.items():
        (tmp_path / name).write_text(yaml.safe_dump(config))
        result = subprocess.run(
            ["promtool", "check", "config", str(tmp_path / name)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_job_shares_the_relabelling() -> None:
    job = kubernetes_proxy_job("lacewing", "10s")
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    assert job["relabel_configs"] == proxy_relabel_configs("lacewing")
    assert job["job_name"] == "lacewing-proxy"


def test_controller_job_keeps_admin_ports_of_control_plane_pods() -> None:
    rules = kubernetes_controller_job("lacewing", "10s")["relabel_configs"]
    pod = {
        "__meta_kubernetes_namespace": "lacewing",
        "__meta_kubernetes_pod_name": "lacewing-destination-5f",
        "__meta_kubernetes_pod_label_lacewing_io_control_plane_component": "destination",
        "__meta_kubernetes_pod_container_port_name": "admin-http",
    }
    assert _relabel(pod, rules) == {
        "namespace": "lacewing", "pod": "lacewing-destination-5f", "component": "destination",
    }  # fmt: skip
    grpc = {**pod, "__meta_kubernetes_pod_container_port_name": "grpc"}
    assert _relabel(grpc, rules) is None
