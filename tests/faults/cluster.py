"""The fault suite's cluster: a real local cluster (`lacewing local up`) and ways to reach into it.

    lacewing-identity-0, lacewing-destination-0     the control plane (unmeshed)
    srv-0, srv-1    meshed, tests.faults.app (GET: the pod's name after 5 ms; POST: a sink)
    cli-0           meshed, idle: the load generator runs inside it, through its proxy
    atk-0           unmeshed, idle: floods and slow clients start here

Certificates live `LIFETIME` seconds (LACEWING_IDENTITY_ISSUANCE_LIFETIME for the identity
controller), so every proxy renews every ~42 s during the suite and one can expire within
a fault. Every helper goes into a pod's namespace directly (`ip netns exec`, or a thread that
entered it), reads the supervisor's status.json for process ids, and cleans up what it
started; `down()` removes the cluster whatever state it is in.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lacewing.local import netns

REPO = Path(__file__).resolve().parents[2]
LIFETIME = 60
SRV_ID = "srv.lwflt.serviceaccount.identity.lacewing.cluster.local"
CLI_ID = "cli.lwflt.serviceaccount.identity.lacewing.cluster.local"
APP = ["python", "-m", "tests.faults.app", "8080"]
SPEC = f"""
workloads:
  - name: srv
    namespace: lwflt
    replicas: 2
    ports: [{{name: http, port: 8080}}]
    command: {json.dumps(APP)}
    env: {{PYTHONPATH: "{REPO}", SLOW_MS: "5"}}
  - name: cli
    namespace: lwflt
    command: [sleep, infinity]
  - name: atk
    namespace: lwflt
    meshed: false
    command: [sleep, infinity]
"""

_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def lacewing(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> str:
    run_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    run_env.pop("LACEWING_LOCAL_CLUSTER", None)
    done = subprocess.run(
        [sys.executable, "-m", "lacewing.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=run_env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"lacewing {' '.join(args)}: {done.stderr.strip() or done.stdout}")
    return done.stdout


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class FaultCluster:
    name: str
    spec_dir: Path

    @property
    def state(self) -> Path:
        return Path("/run/lacewing/local") / self.name

    def up(self) -> None:
        self.down()
        spec = self.spec_dir / "cluster.yaml"
        spec.write_text(SPEC)
        lacewing(
            "local",
            "up",
            "-f",
            str(spec),
            "--name",
            self.name,
            env={"LACEWING_IDENTITY_ISSUANCE_LIFETIME": f"{LIFETIME}s"},
        )

    def down(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "lacewing.cli.main", "local", "down", "--name", self.name],
            capture_output=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            check=False,
        )

    # ---- state --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        for _ in range(20):  # rewritten by rename: a read never sees half a file, but retry
            try:
                data: dict[str, Any] = json.loads((self.state / "status.json").read_text())
                return data
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError(f"cannot read {self.state / 'status.json'}")

    def pod(self, name: str) -> dict[str, Any]:
        pods = {p["name"]: p for p in self.status()["pods"]}
        pod: dict[str, Any] = pods[name]
        return pod

    def pid(self, pod: str, kind: str) -> int:
        pid = self.pod(pod)["pids"].get(kind)
        if not pid:
            raise RuntimeError(f"{pod} has no running {kind}")
        return int(pid)

    def ip(self, pod: str) -> str:
        return str(self.pod(pod)["ip"])

    def netns(self, pod: str) -> str:
        return f"lwl-{self.name}-{pod}"

    def restarts(self) -> dict[str, int]:
        return {p["name"]: int(p["restarts"]) for p in self.status()["pods"]}

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> float:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:g}s")
            time.sleep(0.05)
        return time.time()

    def wait_ready(self, pod: str, timeout: float = 30) -> float:
        return self.wait(lambda: bool(self.pod(pod)["ready"]), timeout, f"{pod} ready")

    # ---- reaching in --------------------------------------------------------------------

    def argv_in(self, pod: str, argv: list[str]) -> list[str]:
        return netns.exec_argv(self.netns(pod), argv)

    def python_in(self, pod: str, module: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv_in(pod, [sys.executable, "-m", module, *args]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            start_new_session=True,
        )

    def sh_in(self, pod: str, *argv: str) -> None:
        subprocess.run(self.argv_in(pod, list(argv)), check=True, capture_output=True, timeout=20)

    def metrics(self, pod: str) -> list[tuple[str, dict[str, str], float]]:
        """The pod's proxy /metrics, as a user would curl localhost:4191/metrics."""
        status, body = netns.in_netns(
            self.netns(pod), lambda: netns.http_get("127.0.0.1", 4191, "/metrics", timeout=5)
        )
        if status != 200:
            raise RuntimeError(f"{pod}: /metrics answered {status}")
        samples = []
        for line in body.decode().splitlines():
            match = _SAMPLE.match(line)
            if match:
                labels = dict(_LABEL.findall(match.group(2) or ""))
                samples.append((match.group(1), labels, float(match.group(3))))
        return samples

    def signal_pod(self, pod: str, sig: signal.Signals, kinds: tuple[str, ...]) -> None:
        for kind in kinds:
            os.killpg(self.pid(pod, kind), sig)


@dataclass
class RssWatch:
    """Samples the proxies' RSS every `period` s on a thread (pids re-read: restarts move them)."""

    cluster: FaultCluster
    pods: tuple[str, ...]
    period: float = 0.2
    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        status = {p["name"]: p for p in self.cluster.status()["pods"]}
        now = time.time()
        for pod in self.pods:
            pid = status[pod]["pids"].get("proxy")
            kib = rss_kib(int(pid)) if pid else None
            if kib is not None:
                self.samples.setdefault(pod, []).append((now, kib))

    def __enter__(self) -> RssWatch:
        self.sample()

        def loop() -> None:
            while not self._stop.wait(self.period):
                try:
                    self.sample()
                except RuntimeError:
                    pass

        self._thread = threading.Thread(target=loop, name="rss-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def before(self, pod: str) -> int:
        return self.samples[pod][0][1]

    def peak(self, pod: str) -> int:
        return max(kib for _, kib in self.samples[pod])

    def after(self, pod: str) -> int:
        return self.samples[pod][-1][1]
