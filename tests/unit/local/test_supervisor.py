"""The supervisor's loop without namespaces: restarts with backoff, readiness, publishing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lacewing.local import netns
from lacewing.local import supervisor as sup
from lacewing.local.plan import plan_cluster
from lacewing.local.spec import parse_cluster
from lacewing.local.state import ClusterState

SPEC = parse_cluster(
    {"workloads": [{"name": "web", "namespace": "shop", "meshed": False, "replicas": 2,
                    "ports": [{"name": "http", "port": 8080}], "command": ["web"]}]}
)  # fmt: skip


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class LocalContainer(sup.Container):
    """Runs a short python process on this machine instead of inside a pod's namespace."""

    script = "import time; time.sleep(30)"

    def start(self, cwd: Path) -> None:
        self.popen = subprocess.Popen([sys.executable, "-c", self.script])


@pytest.fixture
def supervisor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sup.Supervisor]:
    applied: list[str] = []
    monkeypatch.setattr(netns, "apply_services", lambda ns, text: applied.append(ns))
    state = ClusterState("t1", root=tmp_path)
    state.dir.mkdir()
    log = (tmp_path / "log").open("w")
    s = sup.Supervisor(plan_cluster("t1", SPEC), state, clock=FakeClock(), log=log)
    s.applied = applied  # type: ignore[attr-defined]
    for pod in s.plan.pods:
        local = LocalContainer(pod, "app", [], {}, tmp_path / f"{pod.name}.log")
        local.start(tmp_path)
        s.containers.append(local)
    monkeypatch.setattr(
        s, "_probe", lambda pod: all(c.running() for c in s.containers if c.pod is pod)
    )
    yield s
    for c in s.containers:
        if c.popen is not None:
            c.popen.kill()
            c.popen.wait()
    log.close()


def registry(s: sup.Supervisor) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(s.state.registry_file.read_text())
    return data


def test_ready_pods_are_published(supervisor: sup.Supervisor) -> None:
    supervisor.tick()
    data = registry(supervisor)
    assert data["revision"] == 1
    assert [p["ready"] for p in data["pods"]] == [True, True]
    assert supervisor.applied == ["lwl-t1-web-0", "lwl-t1-web-1"]  # type: ignore[attr-defined]
    supervisor.tick()  # nothing changed: no new revision, no rule rewrite
    assert registry(supervisor)["revision"] == 1
    assert len(supervisor.applied) == 2  # type: ignore[attr-defined]


def test_exited_process_restarts_after_doubling_backoff(supervisor: sup.Supervisor) -> None:
    clock: FakeClock = supervisor.clock  # type: ignore[assignment]
    supervisor.tick()
    first = supervisor.containers[1]
    assert first.popen is not None
    first.popen.kill()
    first.popen.wait()
    supervisor.tick()
    assert first.popen is None and first.restart_at == clock.now + 0.5
    data = registry(supervisor)
    assert data["revision"] == 2
    assert [p["ready"] for p in data["pods"]] == [True, False]
    clock.now += 0.4
    supervisor.tick()
    assert first.popen is None  # not yet
    clock.now += 0.2
    supervisor.tick()
    assert first.running() and first.restarts == 1
    assert [p["ready"] for p in registry(supervisor)["pods"]] == [True, True]
    assert first.popen is not None
    first.popen.kill()
    first.popen.wait()
    supervisor.tick()
    assert first.restart_at == clock.now + 1.0  # doubled
    status = json.loads(supervisor.state.status_file.read_text())
    assert [p["restarts"] for p in status["pods"]] == [0, 1]
    assert "web-1/app exited (-9); restarting in 1s" in (
        Path(supervisor.state.dir.parent / "log").read_text()
    )


def test_python_means_this_interpreter() -> None:
    assert sup.python_argv(("python", "-m", "x")) == [sys.executable, "-m", "x"]
    assert sup.python_argv(("sleep", "1")) == ["sleep", "1"]
