"""One container of a pod: its process, restarts with back-off, probes and status.

A `ContainerRun` is driven by its pod (`pods.py`) with the runtime's clock; it never sleeps.
- `start(now)` asks the pod's `Launch` for a process. A launch can fail before any process
  exists: an unknown image is `ErrImagePull` the first time and `ImagePullBackOff` while
  waiting for the next try; a bad reference or securityContext is
  `CreateContainerConfigError`. Either way the container waits, with back-off.
- `poll(now)` notices an exit: the state becomes `terminated` (exit code, reason Completed
  or Error, or OOMKilled never), `lastState` keeps it after a restart, and the next start is
  not before `now + backoff`: `backoff.first` doubled per restart up to `backoff.max`
  (Kubernetes: 10 s up to 300 s), reset after `backoff.reset` seconds of running. While
  waiting, the reason is `CrashLoopBackOff`.
- Probes (`probes.Prober`): readiness drives `ready`; a liveness failure kills the process
  (SIGKILL after SIGTERM's grace) and counts as an exit; a startup probe holds the other two
  back until it passes, and `started` with it.
- `terminate(grace, now)` sends SIGTERM, and `poll` sends SIGKILL at the deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.support.kubeapi.kubelet.probes import Prober

__all__ = ["Backoff", "ContainerRun", "LaunchError"]


class LaunchError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# (container spec) -> the started process; raises LaunchError
Launch = Callable[[dict[str, Any]], subprocess.Popen[bytes]]


@dataclass(frozen=True)
class Backoff:
    first: float = 10.0
    max: float = 300.0
    reset: float = 600.0

    def delay(self, failures: int) -> float:
        return min(self.first * 2 ** max(failures - 1, 0), self.max)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ContainerRun:
    def __init__(
        self,
        spec: dict[str, Any],
        role: str,
        launch: Launch,
        backoff: Backoff,
        max_probe_period: float | None,
    ) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.role = role  # init | sidecar | main
        self._launch = launch
        self._backoff = backoff
        self._max_period = max_probe_period
        self.proc: subprocess.Popen[bytes] | None = None
        self.restart_count = 0
        self.failures = 0
        self.not_before = 0.0
        self.waiting: tuple[str, str] = ("ContainerCreating", "")
        self.terminated: dict[str, Any] | None = None
        self.last_terminated: dict[str, Any] | None = None
        self.started_at = ""
        self.started_mono = 0.0
        self.kill_at: float | None = None
        self.stopping = False
        self.readiness: Prober | None = None
        self.liveness: Prober | None = None
        self.startup: Prober | None = None
        self.exit_codes: list[int] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self.proc is not None

    @property
    def started(self) -> bool:
        return self.running and (self.startup is None or self.startup.passing)

    @property
    def ready(self) -> bool:
        if not self.started:
            return False
        return self.readiness.passing if self.readiness is not None else True

    @property
    def succeeded(self) -> bool:
        return self.terminated is not None and self.terminated["exitCode"] == 0

    def may_start(self, now: float) -> bool:
        return self.proc is None and not self.stopping and now >= self.not_before

    def start(self, now: float) -> None:
        try:
            self.proc = self._launch(self.spec)
        except LaunchError as err:
            self.failures += 1
            self.not_before = now + self._backoff.delay(self.failures)
            pulled = err.reason == "ErrImagePull" and self.waiting[0] in (
                "ErrImagePull",
                "ImagePullBackOff",
            )
            self.waiting = ("ImagePullBackOff" if pulled else err.reason, err.message)
            return
        if self.terminated is not None:
            self.last_terminated = self.terminated
            self.restart_count += 1
        self.terminated = None
        self.waiting = ("", "")
        self.started_at = _stamp()
        self.started_mono = now
        self.kill_at = None
        spec = self.spec
        self.startup = (
            Prober(spec["startupProbe"], "startup", now, self._max_period)
            if spec.get("startupProbe")
            else None
        )
        self.readiness = (
            Prober(spec["readinessProbe"], "readiness", now, self._max_period)
            if spec.get("readinessProbe")
            else None
        )
        self.liveness = (
            Prober(spec["livenessProbe"], "liveness", now) if spec.get("livenessProbe") else None
        )

    def poll(self, now: float) -> bool:
        """Reap an exit (and enforce a kill deadline); True if the process ended now."""
        if self.proc is None:
            return False
        if self.kill_at is not None and now >= self.kill_at:
            self._signal(signal.SIGKILL)
        code = self.proc.poll()
        if code is None:
            return False
        if code < 0:  # killed by a signal: a runtime reports 128 + signal
            code = 128 - code
        self.exit_codes.append(code)
        self.proc = None
        self.terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": self.started_at,
            "finishedAt": _stamp(),
        }
        ran = now - self.started_mono
        if ran >= self._backoff.reset:
            self.failures = 0
        self.failures += 1
        self.not_before = now + self._backoff.delay(self.failures)
        if self.role != "init" or code != 0:
            self.waiting = ("CrashLoopBackOff", f"back-off restarting failed container {self.name}")
        return True

    def _signal(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def terminate(self, grace: float, now: float) -> None:
        self.stopping = True
        if self.proc is not None and self.kill_at is None:
            self._signal(signal.SIGTERM)
            self.kill_at = now + grace

    def kill_for_liveness(self, now: float, grace: float) -> None:
        if self.proc is not None and self.kill_at is None:
            self._signal(signal.SIGTERM)
            self.kill_at = now + grace

    # ------------------------------------------------------------------ status

    def status(self, image_id: str) -> dict[str, Any]:
        state: dict[str, Any]
        if self.proc is not None:
            state = {"running": {"startedAt": self.started_at}}
        elif self.waiting[0]:
            state = {
                "waiting": {
                    "reason": self.waiting[0],
                    **({"message": self.waiting[1]} if self.waiting[1] else {}),
                }
            }
        elif self.terminated is not None:
            state = {"terminated": self.terminated}
        else:
            state = {"waiting": {"reason": "PodInitializing"}}
        last = self.last_terminated
        if self.proc is None and self.waiting[0] and self.terminated is not None:
            last = self.terminated
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": image_id if self.started_at else "",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": {"terminated": last} if last else {},
        }
        if self.proc is not None:
            out["containerID"] = f"testbed://{self.proc.pid}"
        return out
