"""Helpers for the local runtime's root tests: run the CLI, look for leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def run_name(base: str) -> str:
    """`base` plus three characters of this test run's PID: two test runs on one machine
    (two checkouts, or helpers side by side) never bring down each other's clusters."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    n, tail = os.getpid(), ""
    for _ in range(3):
        n, d = divmod(n, 36)
        tail += digits[d]
    return base + tail


def lacewing(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LACEWING_LOCAL_CLUSTER", None)
    return subprocess.run(
        [sys.executable, "-m", "lacewing.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def leftovers(cluster: str) -> list[str]:
    """Everything cluster `cluster` could leave: namespaces, /etc/netns entries, state dir."""
    prefix = f"lwl-{cluster}-"
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found = [line.split()[0] for line in out.splitlines() if line.startswith(prefix)]
    etc = Path("/etc/netns")
    if etc.is_dir():
        found += [f"/etc/netns/{p.name}" for p in etc.iterdir() if p.name.startswith(prefix)]
    state = Path("/run/lacewing/local") / cluster
    if state.exists():
        found.append(str(state))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def cleanup() -> object:
    """Names registered here are brought down after the test, whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        lacewing("local", "down", "--name", name)
