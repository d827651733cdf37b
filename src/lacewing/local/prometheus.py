"""A real Prometheus for a local cluster, run by the supervisor inside the cluster's node namespace.

When the `prometheus` binary is installed (Debian package `prometheus`; `$LACEWING_PROMETHEUS_BIN`
names another, or a missing path to turn it off) the supervisor calls `start()` once the nodes
exist. It gives the node's bridge an address (`NODE_ADDR`, outside the pods' range) so the node
namespace can reach every pod's admin port, writes `prometheus.yml` (the relabelling of
`lacewing.viz.scrapeconfig`, scraping every `SCRAPE_INTERVAL`; and job `lacewing-controller`
for the control-plane pods' admin ports, `CONTROLLER_ADMIN_PORT`) and starts

    ip netns exec <node> prometheus --config.file=... --storage.tsdb.path=<state>/prometheus/data
                                    --web.listen-address=0.0.0.0:9090

in its own session, its output in `<state>/prometheus/prometheus.log`, its PID in
`<state>/prometheus/prometheus.pid`. The node namespace has no route off the machine, so
Prometheus is reachable only from inside it (the CLI enters it, see `lacewing.viz.prometheus`)
and from the pods (at `NODE_ADDR:9090`). `write_targets(pods)` rewrites the file-discovery
document (atomic rename) whenever the supervisor publishes a new set of pods; Prometheus
watches the file. `stop()` sends the process group SIGTERM, then SIGKILL after a grace period;
if the supervisor itself is SIGKILLed, deleting the node namespace kills Prometheus with it.

`describe(state_dir)` is the one line `local up` and `demo` print about it: where it listens,
or how to install it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

from lacewing.errors import LacewingError
from lacewing.local import netns
from lacewing.local.plan import BRIDGE, POD_SUBNET, PodPlan
from lacewing.viz.scrapeconfig import ProxyTarget, file_sd_targets, local_config

__all__ = [
    "BIN_ENV",
    "INSTALL_HINT",
    "NODE_ADDR",
    "PORT",
    "LocalPrometheus",
    "binary",
    "describe",
    "pid",
]

BIN_ENV = "LACEWING_PROMETHEUS_BIN"
INSTALL_HINT = "apt-get install prometheus"
NODE_ADDR = f"{POD_SUBNET}.1"  # pods are .10 and up
PORT = 9090
ADMIN_PORT = 4191
CONTROLLER_ADMIN_PORT = 9990  # $LACEWING_CONTROLLER_ADMIN_ADDR of the control-plane pods
SCRAPE_INTERVAL = "1s"
RETENTION = "2h"
CONTROL_PLANE_NS = "lacewing"
STOP_GRACE = 3.0
DIRNAME = "prometheus"  # inside the cluster's state directory


def binary() -> str | None:
    """The Prometheus executable to run, or None when it is not installed."""
    name = os.environ.get(BIN_ENV) or "prometheus"
    return shutil.which(name)


def pid(state_dir: Path) -> int | None:
    """The PID of the cluster's running Prometheus (checked against /proc), else None."""
    try:
        value = int((state_dir / DIRNAME / "prometheus.pid").read_text().strip())
        cmdline = Path(f"/proc/{value}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return value if b"--storage.tsdb.path=" + str(state_dir).encode() in cmdline else None


def describe(state_dir: Path) -> str:
    running = pid(state_dir)
    if running is not None:
        return (
            f"prometheus: running (pid {running}) in the node namespace at "
            f"{NODE_ADDR}:{PORT}, scraping every proxy every {SCRAPE_INTERVAL}; "
            "`lacewing viz stat` and `lacewing viz dashboard` read it"
        )
    if binary() is None:
        return f"prometheus: not installed, so `lacewing viz` has no data (`{INSTALL_HINT}`)"
    return f"prometheus: installed but not running; see {state_dir / DIRNAME / 'prometheus.log'}"


def _targets(pods: Iterable[PodPlan]) -> list[ProxyTarget]:
    return [
        ProxyTarget(f"{p.ip}:{ADMIN_PORT}", p.namespace, p.name, "deployment", p.workload.name)
        for p in pods
        if p.meshed
    ]


class LocalPrometheus:
    def __init__(self, node_netns: str, state_dir: Path, say: Callable[[str], None]) -> None:
        self.node_netns = node_netns
        self.state_dir = state_dir
        self.dir = state_dir / DIRNAME
        self.say = say
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def targets_file(self) -> Path:
        return self.dir / "targets.json"

    @property
    def controllers_file(self) -> Path:
        return self.dir / "controllers.json"

    def write_targets(self, pods: Iterable[PodPlan]) -> None:
        if self.popen is None:
            return
        pods = list(pods)
        proxies = file_sd_targets(_targets(pods), CONTROL_PLANE_NS)
        controllers = [
            {
                "targets": [f"{p.ip}:{CONTROLLER_ADMIN_PORT}"],
                "labels": {
                    "namespace": p.namespace,
                    "pod": p.name,
                    "component": p.workload.name.removeprefix("lacewing-"),
                },
            }
            for p in pods
            if p.namespace == CONTROL_PLANE_NS and p.name.startswith("lacewing-")
        ]
        for path, document in ((self.targets_file, proxies), (self.controllers_file, controllers)):
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps(document, indent=1) + "\n")
            os.replace(tmp, path)

    def start(self, pods: Iterable[PodPlan]) -> bool:
        """Start Prometheus if it is installed; whether it was started. Never raises: the
        cluster runs without it (the reason is in the supervisor's log)."""
        exe = binary()
        if exe is None:
            self.say(f"prometheus is not installed: no metrics for `viz` ({INSTALL_HINT})")
            return False
        try:
            return self._start(exe, pods)
        except (LacewingError, OSError) as exc:
            self.say(f"prometheus could not start: {exc}")
            self.popen = None
            return False

    def _start(self, exe: str, pods: Iterable[PodPlan]) -> bool:
        self.dir.mkdir(parents=True, exist_ok=True)
        netns.sh("ip", "-n", self.node_netns, "addr", "add", f"{NODE_ADDR}/24", "dev", BRIDGE)
        config = local_config(
            str(self.targets_file),
            CONTROL_PLANE_NS,
            SCRAPE_INTERVAL,
            str(self.controllers_file),
            self_addr=f"127.0.0.1:{PORT}",
        )
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        argv = [
            exe,
            f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address=0.0.0.0:{PORT}",
        ]
        with (self.dir / "prometheus.log").open("ab") as log:
            self.popen = subprocess.Popen(
                netns.exec_argv(self.node_netns, argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,
            )
        (self.dir / "prometheus.pid").write_text(f"{self.popen.pid}\n")
        self.write_targets(pods)
        self.say(f"prometheus started (pid {self.popen.pid}) in {self.node_netns}")
        return True

    def check(self) -> None:
        """Say once if Prometheus exited (it is not restarted: `viz` then says it is down)."""
        if self.popen is not None and self.popen.poll() is not None:
            self.say(f"prometheus exited ({self.popen.returncode}); see {self.dir}/prometheus.log")
            self.popen = None

    def stop(self) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while self.popen.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=2)
        self.popen = None
        with contextlib.suppress(OSError):
            (self.dir / "prometheus.pid").unlink()
