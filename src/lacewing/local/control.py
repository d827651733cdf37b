"""What the CLI does to a local cluster: up, down, status, exec, logs, scale.

`up` checks the machine (Linux, root, `ip`, `iptables-restore`), validates the cluster file,
sweeps a dead cluster of the same name, starts the supervisor detached (its own session, so
the terminal's Ctrl-C does not reach it) and polls its status.json until every pod is ready,
the supervisor reports a failure, or it dies; Ctrl-C while waiting brings the cluster down.
`down` sends the supervisor SIGTERM and waits for it to finish tearing down; with no live
supervisor it sweeps. `scale` drops a request in the supervisor's request directory and
polls status.json until the workload has that many pods, all ready (or the supervisor
reports why it could not). Everything else reads status.json
and the logs, or runs a command in a pod's namespace with `ip netns exec`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lacewing.errors import RuntimeEnvError, UsageError
from lacewing.local import netns
from lacewing.local.controlplane import with_control_plane
from lacewing.local.plan import check_cluster_name, plan_cluster
from lacewing.local.spec import MAX_REPLICAS, load_cluster_file, load_routes_file
from lacewing.local.state import SUPERVISOR_MODULE, ClusterState, is_supervisor, sweep, write_json

__all__ = [
    "DEFAULT_CLUSTER",
    "PodStatus",
    "check_machine",
    "down",
    "exec_in_pod",
    "pod_logs",
    "read_pods",
    "scale",
    "selected_cluster",
    "set_routes",
    "up",
]

DEFAULT_CLUSTER = "local"
CLUSTER_ENV = "LACEWING_LOCAL_CLUSTER"


def selected_cluster(flag: str | None) -> str:
    """The cluster named by a flag, else by $LACEWING_LOCAL_CLUSTER, else `local`."""
    return check_cluster_name(flag or os.environ.get(CLUSTER_ENV) or DEFAULT_CLUSTER)


def check_machine() -> None:
    if not sys.platform.startswith("linux"):
        raise RuntimeEnvError(
            "the local cluster needs Linux (network namespaces and iptables)",
            hint="run it on a Linux machine or VM",
        )
    if os.geteuid() != 0:
        raise RuntimeEnvError(
            "the local cluster needs root (it creates network namespaces and iptables rules)",
            hint="run it with sudo",
        )
    for tool in ("ip", "iptables", "iptables-restore"):
        if shutil.which(tool) is None:
            raise RuntimeEnvError(f"{tool} is not installed", hint="install iproute2 and iptables")


@dataclass(frozen=True)
class PodStatus:
    name: str
    namespace: str
    workload: str
    ip: str
    netns: str
    meshed: bool
    ready: bool
    restarts: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PodStatus:
        return cls(
            name=str(data["name"]),
            namespace=str(data["namespace"]),
            workload=str(data["workload"]),
            ip=str(data["ip"]),
            netns=str(data["netns"]),
            meshed=bool(data["meshed"]),
            ready=bool(data["ready"]),
            restarts=int(data["restarts"]),
        )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def up(
    file: str | Path,
    name: str,
    *,
    timeout: float = 90.0,
    progress: Callable[[str], None] = lambda _: None,
) -> list[PodStatus]:
    """Start cluster `name` from `file`; returns its pods once all are ready."""
    check_cluster_name(name)
    spec = load_cluster_file(file)
    state = ClusterState(name)
    # validates names and sizes before anything is created
    plan_cluster(name, with_control_plane(spec, state.dir))
    check_machine()
    if state.alive():
        raise UsageError(
            f"local cluster {name!r} is already running",
            hint=f"`lacewing local down --name {name}` first, or pick another --name",
        )
    sweep(name)
    state.dir.mkdir(parents=True, exist_ok=True)
    write_json(state.routes_file, [dict(r) for r in spec.routes])
    with state.log_file.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", SUPERVISOR_MODULE,
                "--name", name, "--file", str(Path(file).resolve()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    progress(f"supervisor started (pid {proc.pid}); waiting for pods to be ready")
    try:
        return _wait_ready(state, proc, name, timeout)
    except KeyboardInterrupt:
        progress("interrupted: removing the cluster")
        down(name)
        raise


def _wait_ready(
    state: ClusterState, proc: subprocess.Popen[bytes], name: str, timeout: float
) -> list[PodStatus]:
    deadline = time.monotonic() + timeout
    while True:
        status = state.read_status()
        if status is not None and status.get("phase") == "failed":
            _wait_exit(proc, 10)
            detail = status.get("error", "")
            sweep(name)
            raise RuntimeEnvError(f"local cluster {name!r} failed to start: {detail}")
        if proc.poll() is not None:
            tail = _tail(state.log_file)
            sweep(name)
            raise RuntimeEnvError(
                f"the supervisor of {name!r} exited ({proc.returncode}) while starting",
                hint=tail.splitlines()[-1] if tail else None,
            )
        if status is not None and status.get("pods"):
            pods = [PodStatus.from_dict(p) for p in status["pods"]]
            if all(p.ready for p in pods):
                return pods
        if time.monotonic() > deadline:
            waiting = []
            if status is not None:
                waiting = [p["name"] for p in status.get("pods", []) if not p.get("ready")]
            raise RuntimeEnvError(
                f"pods not ready after {timeout:g}s: {', '.join(waiting) or 'all'}",
                hint=f"see `lacewing local logs POD --name {name}`; "
                f"`lacewing local down --name {name}` removes the cluster",
            )
        time.sleep(0.2)


def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def down(name: str, *, timeout: float = 30.0) -> str:
    """Stop cluster `name` and remove everything it made; says what was done."""
    check_cluster_name(name)
    check_machine()
    state = ClusterState(name)
    pid = state.supervisor_pid()
    if pid is None:
        removed = sweep(name)
        if removed:
            return f"local cluster {name!r} was not running; removed its leftovers"
        return f"no local cluster named {name!r}"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    # Wait for the process itself, not its pid file: the supervisor removes its state
    # directory while tearing down, a moment before it exits.
    while is_supervisor(pid, name):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            break
        time.sleep(0.1)
    sweep(name)
    return f"local cluster {name!r} stopped and removed"


def read_pods(name: str) -> list[PodStatus]:
    state = ClusterState(name)
    status = state.read_status() if state.alive() else None
    if status is None:
        raise UsageError(
            f"no local cluster named {name!r} is running",
            hint="start one with `lacewing local up -f FILE` (or `lacewing demo`)",
        )
    return [PodStatus.from_dict(p) for p in status.get("pods", [])]


def find_pod(name: str, pod: str) -> PodStatus:
    pods = read_pods(name)
    wanted = pod.split("/")[-1]
    for candidate in pods:
        if candidate.name == wanted:
            return candidate
    for candidate in pods:  # a workload name picks its first pod, as kubectl does for deploy/X
        if candidate.workload == wanted:
            return candidate
    raise UsageError(
        f"no pod {pod!r} in local cluster {name!r}",
        hint="pods: " + ", ".join(p.name for p in pods),
    )


def exec_in_pod(name: str, pod: str, argv: list[str]) -> int:
    """Run argv in the pod's namespace (with its hosts file), attached to this terminal."""
    if not argv:
        raise UsageError("no command given", hint="lacewing local exec POD -- CMD [ARGS...]")
    check_machine()
    target = find_pod(name, pod)
    try:
        return subprocess.call(netns.exec_argv(target.netns, argv))
    except KeyboardInterrupt:
        return 130


def pod_logs(name: str, pod: str, *, proxy: bool = False) -> str:
    target = find_pod(name, pod)
    if proxy and not target.meshed:
        raise UsageError(f"pod {target.name} is not meshed: it has no proxy")
    path = ClusterState(name).pod_log(target.name, proxy=proxy)
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def scale(
    name: str,
    workload: str,
    replicas: int,
    *,
    timeout: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PodStatus]:
    """Scale `workload` of cluster `name` to `replicas` pods; its pods once all are ready."""
    check_cluster_name(name)
    if not 0 <= replicas <= MAX_REPLICAS:
        raise UsageError(f"--replicas must be a number from 0 to {MAX_REPLICAS}")
    check_machine()
    state = ClusterState(name)
    status = state.read_status() if state.alive() else None
    if status is None:
        raise UsageError(
            f"no local cluster named {name!r} is running",
            hint="start one with `lacewing local up -f FILE`",
        )
    workloads: dict[str, Any] = status.get("workloads", {})
    if workload.startswith("lacewing-") and workload in workloads:
        raise UsageError(f"{workload} is part of the control plane and cannot be scaled")
    if workload not in workloads:
        known = ", ".join(w for w in workloads if not w.startswith("lacewing-"))
        raise UsageError(
            f"no workload {workload!r} in local cluster {name!r}", hint=f"workloads: {known}"
        )
    state.request_scale(workload, replicas)
    deadline = time.monotonic() + timeout
    while True:
        failure = state.request_failure(workload)
        if failure is not None:
            raise RuntimeEnvError(f"could not scale {workload}: {failure}")
        if not state.alive():
            raise RuntimeEnvError(f"the supervisor of local cluster {name!r} is gone")
        status = state.read_status() or {}
        counts = status.get("workloads", {}).get(workload, {})
        pending = (state.requests / f"{workload}.scale").exists()
        if not pending and counts == {"replicas": replicas, "ready": replicas}:
            pods = [PodStatus.from_dict(p) for p in status.get("pods", [])]
            return [p for p in pods if p.workload == workload]
        if time.monotonic() > deadline:
            raise RuntimeEnvError(
                f"{workload} did not reach {replicas} ready pods in {timeout:g}s "
                f"(now {counts.get('ready', '?')} of {counts.get('replicas', '?')})",
                hint=f"see `lacewing local status --name {name}` and the pods' logs",
            )
        sleep(0.1)


def set_routes(name: str, file: str | Path) -> int:
    """Replace the routes of running cluster `name` with the HTTPRoutes in `file` (the
    destination controller picks them up within its poll interval); returns their number."""
    routes = load_routes_file(file)
    state = ClusterState(name)
    if not state.alive():
        raise UsageError(f"local cluster {name!r} is not running", hint="`lacewing local up` first")
    write_json(state.routes_file, [dict(r) for r in routes])
    return len(routes)
