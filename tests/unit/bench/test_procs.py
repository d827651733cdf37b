"""The benchmark leaves no process behind, and a child that dies is reported with its output."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bench.procs import BenchError, Supervisor, free_port


def _until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_children_are_stopped_when_the_run_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), Supervisor(tmp_path, grace_s=1.0) as sup:
        sleeper = sup.start("sleeper", ["sleep", "60"], cpu=None)
        # Ignores SIGTERM, so only the SIGKILL after the grace period stops it.
        stubborn = sup.start(
            "stubborn",
            [
                sys.executable,
                "-c",
                "import signal,time; signal.signal(signal.SIGTERM, "
                "signal.SIG_IGN); print('up', flush=True); time.sleep(60)",
            ],
            cpu=None,
        )
        _until(lambda: "up" in stubborn.log.read_text())
        raise RuntimeError("a step failed")
    assert _gone(sleeper.pid) and _gone(stubborn.pid)
    assert sup.children == []


def test_a_child_that_exits_before_ready_is_reported_with_its_output(tmp_path: Path) -> None:
    with Supervisor(tmp_path) as sup:
        child = sup.start(
            "broken",
            [sys.executable, "-c", "print('cannot listen: port in use'); exit(3)"],
            cpu=None,
        )
        with pytest.raises(BenchError, match=r"broken exited with status 3: cannot listen"):
            sup.wait_tcp(child, free_port(), timeout_s=5)


def test_pinning_uses_taskset_and_keeps_the_pid(tmp_path: Path) -> None:
    cpu = min(os.sched_getaffinity(0))
    with Supervisor(tmp_path) as sup:
        child = sup.start("pinned", ["sleep", "30"], cpu=cpu)
        # taskset sets the affinity, then execs the program under the same PID.
        _until(lambda: Path(f"/proc/{child.pid}/comm").read_text().strip() == "sleep")
        assert os.sched_getaffinity(child.pid) == {cpu}
    assert _gone(child.pid)
