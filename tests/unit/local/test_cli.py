"""`lacewing local`, `demo` and `viz stat`: mistakes and missing privileges are one line each."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lacewing.cli.main import main
from lacewing.errors import RuntimeEnvError
from lacewing.local import control


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def test_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeEnvError, match="needs root") as caught:
        control.check_machine()
    assert caught.value.hint == "run it with sudo"


def test_needs_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(RuntimeEnvError, match="needs Linux"):
        control.check_machine()


def test_up_without_root_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    spec = tmp_path / "c.yaml"
    spec.write_text("workloads: [{name: web, command: [web]}]\n")
    code, _, err = run_cli(capsys, "local", "up", "-f", str(spec), "--name", "tx")
    assert code == 1
    assert err.splitlines() == [
        "Error: the local cluster needs root (it creates network namespaces and iptables rules)",
        "run it with sudo",
    ]


def test_bad_cluster_file_names_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text("workloads: [{name: web, command: [web], replicas: many}]\n")
    code, _, err = run_cli(capsys, "local", "up", "-f", str(spec))
    assert code == 2
    assert err.splitlines()[0] == (
        "Error: cluster file: workloads[0].replicas: must be a number from 0 to 20"
    )


def test_bad_cluster_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "local", "status", "--name", "Bad-Name")
    assert code == 2
    assert err.startswith("Error: invalid cluster name 'Bad-Name'")


def test_env_selects_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LACEWING_LOCAL_CLUSTER", "tenv")
    assert control.selected_cluster(None) == "tenv"
    assert control.selected_cluster("tflag") == "tflag"
    monkeypatch.delenv("LACEWING_LOCAL_CLUSTER")
    assert control.selected_cluster(None) == "local"


def test_status_of_missing_cluster(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LACEWING_LOCAL_STATE_DIR", str(tmp_path))
    code, _, err = run_cli(capsys, "local", "status", "--name", "tnone")
    assert code == 2
    assert err.splitlines()[0] == "Error: no local cluster named 'tnone' is running"


def test_viz_stat_bad_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LACEWING_LOCAL_CLUSTER", raising=False)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    code, _, err = run_cli(capsys, "viz", "stat", "deploy")
    assert code == 1  # no local cluster selected: Kubernetes, and there is none
    assert err.splitlines()[0] == "Error: kubeconfig /nonexistent/kubeconfig does not exist"
    code, _, err = run_cli(capsys, "viz", "stat", "jobs", "--local")
    assert code == 2
    assert err.splitlines()[0] == "Error: cannot stat 'jobs' (RESOURCE): unknown kind 'jobs'"
    code, _, err = run_cli(capsys, "viz", "stat", "deploy", "--local", "-t", "0s")
    assert code == 2
    assert err.splitlines()[0] == "Error: --time-window must be longer than 0s"
    code, _, err = run_cli(capsys, "viz", "stat", "deploy", "-o", "yaml", "--local")
    assert code == 2
    assert err.splitlines()[0] == "Error: invalid -o 'yaml'"
    code, _, err = run_cli(
        capsys, "viz", "stat", "deploy", "--to", "svc/a", "--from", "deploy/b", "--local"
    )
    assert code == 2
    assert err.splitlines()[0] == "Error: --to and --from cannot be used together"


def test_demo_bad_duration(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "demo", "--duration", "soon")
    assert code == 2
    assert err.splitlines()[0] == "Error: invalid duration 'soon' for --duration"
