"""`kubectl get pods` columns as the API server prints them: the reason a pod is stuck shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.support.kubeapi.tables import COLUMNS

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def row(pod: dict[str, Any]) -> dict[str, Any]:
    return {name: cell(pod, NOW) for name, cell in COLUMNS["Pod"] if name in ("Status", "Restarts")}


def pod(phase: str, *containers: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> Any:
    status = {"phase": phase, "containerStatuses": list(containers)}
    if init:
        status["initContainerStatuses"] = list(init)
    return {"metadata": {"name": "p"}, "status": status}


def test_a_crash_looping_container_shows_its_reason_and_restarts() -> None:
    looping = {"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 4}
    running = {"state": {"running": {}}, "restartCount": 1}
    assert row(pod("Running", running, looping)) == {"Status": "CrashLoopBackOff", "Restarts": 5}


def test_running_pods_show_the_phase_and_init_waits_are_prefixed() -> None:
    assert row(pod("Running", {"state": {"running": {}}})) == {"Status": "Running", "Restarts": 0}
    done = {"state": {"terminated": {"reason": "Completed"}}}
    pulling = {"state": {"waiting": {"reason": "ImagePullBackOff"}}}
    assert row(pod("Pending", init=(done, pulling)))["Status"] == "Init:ImagePullBackOff"
    assert row(pod("Running", {"state": {"running": {}}}, init=(done,)))["Status"] == "Running"
