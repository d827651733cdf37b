"""Where a local cluster keeps its state, how to tell whether it lives, and sweeping leftovers.

    /run/lacewing/local/<cluster>/
        supervisor.pid     the supervisor's PID (the cluster lives while that process does)
        supervisor.log     its log
        status.json        per pod: ready, restarts, pids (rewritten by the supervisor)
        registry.json      the registry (lacewing.core.registry), for the destination controller
        routes.json        the cluster's HTTPRoutes (a list of objects), for the same reader
        requests/          the CLI's requests to the supervisor (`<workload>.scale`), see below
        logs/<pod>.log, logs/<pod>.proxy.log
        identity/          the cluster's trust anchor, issuer and token key

A cluster is alive when its supervisor PID runs a process whose command line is our
supervisor for that name (a recycled PID does not count). `sweep(name)` removes what a dead
cluster left: namespaces `lwl-<name>-*` (killing whatever still runs in them), their
/etc/netns entries and the state directory. `up` and `down` sweep before doing anything.

The control channel is a directory, read by the supervisor every tick: `lacewing local scale`
writes `requests/<workload>.scale` (the replica count, atomically); the supervisor takes
(deletes) it, applies it and, if that failed, writes `requests/<workload>.failed` with the
one-line reason. Success shows in status.json (`workloads`, `pods`), which the CLI polls.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from lacewing.local import netns
from lacewing.local.plan import netns_prefix

__all__ = [
    "SUPERVISOR_MODULE",
    "ClusterState",
    "is_supervisor",
    "state_root",
    "sweep",
    "write_json",
]

SUPERVISOR_MODULE = "lacewing.local.supervisor"
DEFAULT_ROOT = Path("/run/lacewing/local")


def state_root() -> Path:
    return Path(os.environ.get("LACEWING_LOCAL_STATE_DIR", str(DEFAULT_ROOT)))


class ClusterState:
    """Paths and liveness of one named cluster."""

    def __init__(self, name: str, root: Path | None = None) -> None:
        self.name = name
        self.dir = (root or state_root()) / name

    @property
    def pid_file(self) -> Path:
        return self.dir / "supervisor.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "supervisor.log"

    @property
    def status_file(self) -> Path:
        return self.dir / "status.json"

    @property
    def registry_file(self) -> Path:
        return self.dir / "registry.json"

    @property
    def routes_file(self) -> Path:
        return self.dir / "routes.json"  # = controller.destination.local.routes_path

    @property
    def identity_dir(self) -> Path:
        return self.dir / "identity"  # = controlplane.IDENTITY_DIR

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def requests(self) -> Path:
        return self.dir / "requests"

    def request_scale(self, workload: str, replicas: int) -> None:
        """The CLI's side: ask the supervisor to scale `workload` (replaces an unread request)."""
        self.requests.mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (self.requests / f"{workload}.failed").unlink()
        tmp = self.requests / f".{workload}.tmp"
        tmp.write_text(f"{replicas}\n")
        os.replace(tmp, self.requests / f"{workload}.scale")

    def take_scale_requests(self) -> list[tuple[str, int | None]]:
        """The supervisor's side: every pending request, deleted as it is read (None: garbled)."""
        if not self.requests.is_dir():
            return []
        taken: list[tuple[str, int | None]] = []
        for path in sorted(self.requests.glob("*.scale")):
            try:
                text = path.read_text().strip()
                path.unlink()
            except OSError:
                continue
            taken.append((path.name.removesuffix(".scale"), int(text) if text.isdigit() else None))
        return taken

    def fail_request(self, workload: str, message: str) -> None:
        with contextlib.suppress(OSError):
            (self.requests / f"{workload}.failed").write_text(message + "\n")

    def request_failure(self, workload: str) -> str | None:
        try:
            return (self.requests / f"{workload}.failed").read_text().strip()
        except OSError:
            return None

    def pod_log(self, pod: str, proxy: bool = False) -> Path:
        return self.logs / (f"{pod}.proxy.log" if proxy else f"{pod}.log")

    def supervisor_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if is_supervisor(pid, self.name) else None

    def alive(self) -> bool:
        return self.supervisor_pid() is not None

    def read_status(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def write_json(path: Path, data: object) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def is_supervisor(pid: int, name: str) -> bool:
    """Whether process `pid` is (still) the supervisor of cluster `name`."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in argv]
    return SUPERVISOR_MODULE in args and name in args


def sweep(name: str) -> list[str]:
    """Remove the leftovers of cluster `name` if its supervisor is gone; what was removed."""
    state = ClusterState(name)
    if state.alive():
        return []
    removed: list[str] = []
    prefix = netns_prefix(name)
    node = prefix + "node"
    spaces = netns.list_netns(prefix)
    for space in [s for s in spaces if s != node] + [s for s in spaces if s == node]:
        netns.delete_netns(space)
        removed.append(space)
    for entry in netns.list_etc(prefix):
        netns.remove_etc(entry)
        removed.append(f"/etc/netns/{entry}")
    if state.dir.exists():
        with contextlib.suppress(OSError):
            shutil.rmtree(state.dir)
        removed.append(str(state.dir))
    return removed
