"""The local runtime's Prometheus: the one line about it, and its targets file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lacewing.local import prometheus
from lacewing.local.controlplane import with_control_plane
from lacewing.local.plan import plan_cluster
from lacewing.local.spec import ClusterSpec, PortSpec, WorkloadSpec


def test_missing_binary_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(prometheus.BIN_ENV, str(tmp_path / "no-such-prometheus"))
    assert prometheus.binary() is None
    assert prometheus.describe(tmp_path) == (
        "prometheus: not installed, so `lacewing viz` has no data (`apt-get install prometheus`)"
    )
    said: list[str] = []
    assert not prometheus.LocalPrometheus("lwl-x-node", tmp_path, said.append).start(())
    assert said == [
        "prometheus is not installed: no metrics for `viz` (apt-get install prometheus)"
    ]


def test_a_stale_pid_file_is_not_a_running_prometheus(tmp_path: Path) -> None:
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus" / "prometheus.pid").write_text("1\n")  # init, not our Prometheus
    assert prometheus.pid(tmp_path) is None


def test_targets_are_the_meshed_pods(tmp_path: Path) -> None:
    spec = ClusterSpec(
        workloads=(
            WorkloadSpec("web", ("app",), "shop", replicas=2, ports=(PortSpec("http", 80),)),
            WorkloadSpec("db", ("db",), "shop", meshed=False),
        )
    )
    plan = plan_cluster("t", with_control_plane(spec, tmp_path))
    local = prometheus.LocalPrometheus(plan.node_netns, tmp_path, lambda _: None)
    local.dir.mkdir()
    local.popen = object()  # type: ignore[assignment]  # as if started
    local.write_targets(plan.pods)
    document = json.loads(local.targets_file.read_text())
    assert [(d["targets"], d["labels"]["__meta_kubernetes_pod_name"]) for d in document] == [
        ([f"{plan.pod('web-0').ip}:4191"], "web-0"),
        ([f"{plan.pod('web-1').ip}:4191"], "web-1"),
    ]
    assert (
        document[0]["labels"]["__meta_kubernetes_pod_label_lacewing_io_proxy_deployment"] == "web"
    )


def test_a_prometheus_that_cannot_start_does_not_stop_the_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(prometheus.BIN_ENV, "true")  # installed, but the node netns is missing
    said: list[str] = []
    local = prometheus.LocalPrometheus("lwl-lwviznone-node", tmp_path, said.append)
    assert local.start(()) is False
    assert said and said[0].startswith("prometheus could not start: `ip -n lwl-lwviznone-node")
    assert local.popen is None
