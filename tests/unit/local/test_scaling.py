"""`lacewing local scale`: the plan, the request channel, the supervisor applying it, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lacewing.cli.main import main
from lacewing.errors import LacewingError, UsageError
from lacewing.local import control, netns
from lacewing.local import supervisor as sup
from lacewing.local.plan import plan_cluster
from lacewing.local.scaling import scale_plan
from lacewing.local.spec import parse_cluster
from lacewing.local.state import ClusterState

SPEC = parse_cluster(
    {"workloads": [
        {"name": "web", "namespace": "shop", "meshed": False, "replicas": 2,
         "ports": [{"name": "http", "port": 8080}], "command": ["web"]},
        {"name": "idle", "replicas": 0, "meshed": False, "command": ["sleep"]},
        {"name": "db", "meshed": False, "command": ["db"]},
    ]}
)  # fmt: skip


def layout(plan: Any) -> list[tuple[str, str, str, str]]:
    return [(p.name, p.ip, p.netns, p.veth) for p in plan.pods]


# ---- the plan ---------------------------------------------------------------------------


def test_scale_up_takes_the_next_replica_numbers_and_free_addresses() -> None:
    plan = plan_cluster("t1", SPEC)
    scaled = scale_plan(plan, "web", 4)
    assert [p.name for p in scaled.added] == ["web-2", "web-3"]
    assert scaled.removed == ()
    # existing pods keep their addresses; new ones take the next free ones, after the
    # workload's other pods in the listing
    assert layout(scaled.plan) == [
        ("web-0", "10.42.0.10", "lwl-t1-web-0", "lwv0"),
        ("web-1", "10.42.0.11", "lwl-t1-web-1", "lwv1"),
        ("web-2", "10.42.0.13", "lwl-t1-web-2", "lwv3"),
        ("web-3", "10.42.0.14", "lwl-t1-web-3", "lwv4"),
        ("db-0", "10.42.0.12", "lwl-t1-db-0", "lwv2"),
    ]
    assert scaled.plan.services == plan.services


def test_scale_down_removes_the_highest_replicas() -> None:
    plan = scale_plan(plan_cluster("t1", SPEC), "web", 4).plan
    scaled = scale_plan(plan, "web", 1)
    assert [p.name for p in scaled.removed] == ["web-1", "web-2", "web-3"]
    assert [p.name for p in scaled.plan.pods] == ["web-0", "db-0"]
    assert scale_plan(scaled.plan, "web", 1).removed == ()  # no change


def test_pods_still_stopping_keep_their_name_and_address() -> None:
    plan = plan_cluster("t1", SPEC)
    down = scale_plan(plan, "web", 1)  # web-1 (10.42.0.11, lwv1) is on its way out
    up = scale_plan(down.plan, "web", 2, busy=down.removed)
    assert layout(up.plan)[1] == ("web-2", "10.42.0.13", "lwl-t1-web-2", "lwv3")
    # once it is gone, its name and address are free again
    again = scale_plan(down.plan, "web", 2)
    assert layout(again.plan)[1] == ("web-1", "10.42.0.11", "lwl-t1-web-1", "lwv1")


def test_a_workload_at_zero_replicas_gets_pods_in_file_order() -> None:
    scaled = scale_plan(plan_cluster("t1", SPEC), "idle", 1)
    assert [p.name for p in scaled.plan.pods] == ["web-0", "web-1", "idle-0", "db-0"]


@pytest.mark.parametrize(
    ("workload", "replicas", "message"),
    [
        ("nope", 1, "no workload 'nope' in local cluster 't1'"),
        ("web", 21, "replicas must be a number from 0 to 20, not 21"),
        ("web", -1, "replicas must be a number from 0 to 20, not -1"),
    ],
)
def test_bad_requests_are_one_line(workload: str, replicas: int, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        scale_plan(plan_cluster("t1", SPEC), workload, replicas)
    assert caught.value.message == message


# ---- the request channel ----------------------------------------------------------------


def test_requests_are_taken_once_and_failures_reported(tmp_path: Path) -> None:
    state = ClusterState("t1", root=tmp_path)
    state.dir.mkdir()
    assert state.take_scale_requests() == []
    state.request_scale("web", 3)
    state.request_scale("web", 4)  # replaces the unread one
    (state.requests / "db.scale").write_text("lots\n")
    assert state.take_scale_requests() == [("db", None), ("web", 4)]
    assert state.take_scale_requests() == []
    state.fail_request("web", "no address left")
    assert state.request_failure("web") == "no address left"
    state.request_scale("web", 1)  # a new request clears the old failure
    assert state.request_failure("web") is None


# ---- the supervisor applying them -------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _start_locally(self: sup.Container, cwd: Path) -> None:
    self.popen = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
    )


@pytest.fixture
def supervisor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sup.Supervisor]:
    removed: list[str] = []
    monkeypatch.setattr(netns, "apply_services", lambda ns, text: None)
    monkeypatch.setattr(netns, "delete_netns", removed.append)
    monkeypatch.setattr(netns, "remove_etc", lambda ns: None)
    monkeypatch.setattr(sup.Supervisor, "_build_pod", lambda s, pod: s.built.append(pod.netns))
    monkeypatch.setattr(sup.Container, "start", _start_locally)
    monkeypatch.setattr(sup, "STOP_GRACE", 0.5)
    state = ClusterState("t1", root=tmp_path)
    state.dir.mkdir()
    log = (tmp_path / "log").open("w")
    s = sup.Supervisor(plan_cluster("t1", SPEC), state, clock=FakeClock(), log=log)
    s.removed = removed  # type: ignore[attr-defined]
    for pod in s.plan.pods:
        s._build_pod(pod)
        s.containers.extend(s._containers(pod))
    for c in s.containers:
        c.start(tmp_path)
    monkeypatch.setattr(
        s, "_probe", lambda pod: all(c.running() for c in s.containers if c.pod is pod)
    )
    yield s
    for c in [*s.containers, *(c for _, _, mine in s.terminating for c in mine)]:
        if c.popen is not None:
            c.popen.kill()
            c.popen.wait()
    log.close()


def status(s: sup.Supervisor) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(s.state.status_file.read_text())
    return data


def test_scale_up_starts_pods_and_publishes_them_when_ready(supervisor: sup.Supervisor) -> None:
    supervisor.tick()
    supervisor.state.request_scale("web", 3)
    supervisor.tick()
    assert status(supervisor)["workloads"] == {
        "web": {"replicas": 3, "ready": 3},
        "idle": {"replicas": 0, "ready": 0},
        "db": {"replicas": 1, "ready": 1},
    }
    registry = json.loads(supervisor.state.registry_file.read_text())
    ready = [p["name"] for p in registry["pods"] if p["ready"]]
    assert ready == ["web-0", "web-1", "web-2", "db-0"]
    assert "lwl-t1-web-2" in supervisor.built


def test_scale_down_unpublishes_at_once_and_stops_after_the_drain(
    supervisor: sup.Supervisor,
) -> None:
    clock: FakeClock = supervisor.clock  # type: ignore[assignment]
    supervisor.tick()
    web1 = next(c for c in supervisor.containers if c.pod.name == "web-1")
    supervisor.state.request_scale("web", 1)
    supervisor.tick()
    registry = json.loads(supervisor.state.registry_file.read_text())
    assert [p["name"] for p in registry["pods"]] == ["web-0", "db-0"]
    assert status(supervisor)["workloads"]["web"] == {"replicas": 1, "ready": 1}
    assert web1.running()  # draining: still serving what it already has
    clock.now += sup.DRAIN
    supervisor.tick()
    assert not web1.running()
    assert supervisor.removed == ["lwl-t1-web-1"]  # type: ignore[attr-defined]
    assert "lwl-t1-web-1" not in supervisor.built


def test_a_request_that_cannot_be_applied_says_why(supervisor: sup.Supervisor) -> None:
    supervisor.state.request_scale("nope", 1)
    supervisor.tick()
    assert supervisor.state.request_failure("nope") == "no workload 'nope' in local cluster 't1'"


# ---- the CLI ----------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def test_scale_without_a_cluster_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(control, "check_machine", lambda: None)
    monkeypatch.setenv("LACEWING_LOCAL_STATE_DIR", str(tmp_path))
    code, _, err = run_cli(capsys, "local", "scale", "web", "--replicas", "2", "--name", "tx")
    assert code != 0
    assert err.splitlines()[0] == "Error: no local cluster named 'tx' is running"


def test_scale_rejects_bad_replicas_before_anything(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "local", "scale", "web", "--replicas", "99", "--name", "tx")
    assert code != 0
    assert err.splitlines() == ["Error: --replicas must be a number from 0 to 20"]


def test_scale_waits_for_the_supervisor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(control, "check_machine", lambda: None)
    monkeypatch.setenv("LACEWING_LOCAL_STATE_DIR", str(tmp_path))
    state = ClusterState("tx")
    state.dir.mkdir()
    monkeypatch.setattr(ClusterState, "alive", lambda self: True)
    pod = {"name": "web-0", "namespace": "shop", "workload": "web", "ip": "10.42.0.10",
           "netns": "lwl-tx-web-0", "meshed": True, "ready": True, "restarts": 0}  # fmt: skip
    state.status_file.write_text(
        json.dumps({"workloads": {"web": {"replicas": 1, "ready": 1}}, "pods": [pod]})
    )
    answers: list[str] = []

    def supervisor_tick(seconds: float) -> None:  # plays the supervisor between polls
        taken = state.take_scale_requests()
        if taken:
            answers.append(repr(taken))
            state.status_file.write_text(
                json.dumps({"workloads": {"web": {"replicas": 0, "ready": 0}}, "pods": []})
            )

    assert control.scale("tx", "web", 0, sleep=supervisor_tick) == []
    assert answers == ["[('web', 0)]"]
    state.fail_request("web", "no address left")
    monkeypatch.setattr(os, "replace", lambda a, b: None)  # the request is never written...
    with pytest.raises(LacewingError, match="could not scale web: no address left"):
        control.scale("tx", "web", 3, sleep=lambda s: state.fail_request("web", "no address left"))
