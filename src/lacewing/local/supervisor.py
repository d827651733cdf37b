"""The local cluster's supervisor: one detached process that builds, runs and removes a cluster.

`lacewing local up` starts `python -m lacewing.local.supervisor --name N --file F` in its own
session and waits for `status.json` to say every pod is ready. The supervisor:

1. builds the node namespace and, per pod, its namespace, veth, /etc/netns files, proxy-init
   rules (meshed pods) and the jump to the Service chain (see `lacewing.local.plan`); writes
   the cluster's trust anchor, issuer, token key and each meshed pod's token
   (`lacewing.local.controlplane`);
   starts Prometheus in the node namespace when it is installed (`lacewing.local.prometheus`;
   its targets are rewritten with every publish, it is stopped first on teardown);
2. starts the control-plane pods (identity) and waits until they accept connections, then
   every other pod's processes, each with `ip netns exec` in its own session: for a meshed pod
   the proxy with identity (as root with LACEWING_PROXY_RUN_AS_UID=2102; it drops to 2102
   after binding, gets its certificate, then reports ready) and the app; logs go to
   `logs/<pod>.log` and `logs/<pod>.proxy.log`;
3. loops every `TICK` seconds: a process that exited is restarted after a backoff that doubles
   per restart (0.5 s .. 10 s); each pod is probed from inside its namespace (every app port
   accepts on 127.0.0.1, and the proxy's /ready says 200); when the set of ready pods changes
   the registry's revision is bumped, registry.json rewritten (atomic rename) and every pod's
   Service chain replaced with the ready endpoints (`iptables-restore --noflush`);
   scale requests from the CLI (`requests/<workload>.scale`, see `lacewing.local.state`) are
   applied at the start of a tick: new pods are built and started like the first ones, pods
   scaled away leave the registry at once and are stopped `DRAIN` seconds later;
4. on SIGTERM/SIGINT (or a failure while building) stops every process group (SIGTERM, then
   SIGKILL after a grace period), deletes the namespaces and /etc/netns entries, and removes
   its state directory. If it is SIGKILLed instead, the next `up`/`down` sweeps the leftovers.

The loop is synchronous (no event loop, no background tasks): probes run on short-lived
threads that have entered a pod's namespace. The clock is injectable for the backoff.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lacewing.controller.admin import ADMIN_ADDR_ENV
from lacewing.errors import LacewingError, RuntimeEnvError
from lacewing.local import netns
from lacewing.local.controlplane import (
    CONTROL_PLANE_NAMESPACE,
    with_control_plane,
    write_identity_material,
    write_policy_file,
    write_token,
)
from lacewing.local.controlplane import (
    proxy_env as control_plane_env,
)
from lacewing.local.plan import (
    ClusterPlan,
    PodPlan,
    hosts_file,
    plan_cluster,
    resolv_conf,
    services_restore,
)
from lacewing.local.prometheus import CONTROLLER_ADMIN_PORT, LocalPrometheus
from lacewing.local.scaling import scale_plan
from lacewing.local.spec import load_cluster_file
from lacewing.local.state import ClusterState, write_json

__all__ = ["PROXY_UID", "Supervisor", "main"]

PROXY_UID = 2102
TICK = 0.25
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
STOP_GRACE = 3.0
# A pod scaled away leaves the registry and the Service chains at once, and is stopped this
# much later: long enough for destination (0.2 s poll) to tell every proxy.
DRAIN = 1.0
ADMIN_PORT = 4191
CONTROL_PLANE_READY_TIMEOUT = 30.0
# `lacewing proxy` without the CLI around it (smaller RSS); with LACEWING_IDENTITY_* set it
# is meshed: certificate first, then ready, mTLS on both sides.
PROXY_MODULE = "lacewing.proxy"


def _is_control_plane(pod: PodPlan) -> bool:
    return pod.namespace == CONTROL_PLANE_NAMESPACE and pod.name.startswith("lacewing-")


def python_argv(argv: tuple[str, ...]) -> list[str]:
    """`python` / `python3` in a cluster file means the interpreter running lacewing."""
    if argv and argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    return list(argv)


@dataclass
class Container:
    """One process of a pod, restarted when it exits."""

    pod: PodPlan
    kind: str  # "app" or "proxy"
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    restart_at: float | None = None

    def start(self, cwd: Path) -> None:
        with self.log.open("ab") as sink:
            self.popen = subprocess.Popen(
                netns.exec_argv(self.pod.netns, self.argv),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)

    def reap(self) -> int | None:
        """If the process exited: its status (once), else None."""
        if self.popen is None:
            return None
        code = self.popen.poll()
        if code is None:
            return None
        self.popen = None
        return code


class Supervisor:
    def __init__(
        self,
        plan: ClusterPlan,
        state: ClusterState,
        *,
        clock: Callable[[], float] = time.monotonic,
        log: IO[str] | None = None,
    ) -> None:
        self.plan = plan
        self.state = state
        self.clock = clock
        self.out = log or sys.stderr
        self.containers: list[Container] = []
        self.ready: dict[str, bool] = {}
        self.revision = 0
        self.stopping = False
        self.built: list[str] = []
        # pods scaled away: (when to stop them, the pod, its processes)
        self.terminating: list[tuple[float, PodPlan, list[Container]]] = []
        self.prometheus = LocalPrometheus(plan.node_netns, state.dir, self.say)

    # ---- building -------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.out.write(f"{time.strftime('%H:%M:%S')} {text}\n")
        self.out.flush()

    def build(self) -> None:
        plan = self.plan
        self.state.logs.mkdir(parents=True, exist_ok=True)
        self.built.append(plan.node_netns)
        netns.add_node(plan.node_netns)
        for pod in plan.pods:
            self._build_pod(pod)
        self.say(f"built node {plan.node_netns} and {len(plan.pods)} pods")
        write_identity_material(self.state.identity_dir)
        for pod in plan.pods:
            if pod.meshed:
                write_token(self.state.identity_dir, pod)
        self.publish()
        self.prometheus.start(plan.pods)  # when installed; see lacewing.local.prometheus
        for pod in plan.pods:
            self.containers.extend(self._containers(pod))
        # The control plane first: meshed proxies ask it for a certificate as they start.
        control_plane = [c for c in self.containers if _is_control_plane(c.pod)]
        for container in control_plane:
            container.start(self.state.dir)
        self._await_ready([c.pod for c in control_plane], CONTROL_PLANE_READY_TIMEOUT)
        for container in self.containers:
            if container.popen is None:
                container.start(self.state.dir)

    def _build_pod(self, pod: PodPlan) -> None:
        self.built.append(pod.netns)
        netns.add_pod(self.plan.node_netns, pod)
        netns.write_etc(pod.netns, hosts_file(pod, self.plan.services), resolv_conf(pod))
        if pod.meshed:
            netns.sh(
                *netns.exec_argv(
                    pod.netns, [sys.executable, "-m", "lacewing.cli.main", "proxy-init"]
                )
            )
        netns.install_services_jump(pod.netns, self.plan.name)

    def _await_ready(self, pods: list[PodPlan], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(self._probe(pod) for pod in pods):
            if self.stopping:
                return
            if time.monotonic() > deadline:
                names = ", ".join(p.name for p in pods if not self._probe(p))
                raise RuntimeEnvError(f"control plane not ready after {timeout:g}s: {names}")
            time.sleep(0.1)

    def _containers(self, pod: PodPlan) -> list[Container]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("LACEWING_PROXY_")}
        base["PYTHONUNBUFFERED"] = "1"
        containers = []
        if pod.meshed:
            proxy_env = {
                **base,
                "LACEWING_PROXY_RUN_AS_UID": str(PROXY_UID),
                "LACEWING_PROXY_RUN_AS_GID": str(PROXY_UID),
                "LACEWING_PROXY_SHUTDOWN_GRACE_PERIOD": "1s",
            }
            opaque = [str(p.port) for p in pod.workload.ports if p.opaque]
            if opaque:
                proxy_env["LACEWING_PROXY_OPAQUE_PORTS"] = ",".join(opaque)
            proxy_env.update(control_plane_env(self.plan, pod, self.state.dir))
            containers.append(
                Container(
                    pod,
                    "proxy",
                    [sys.executable, "-m", PROXY_MODULE],
                    proxy_env,
                    self.state.pod_log(pod.name, proxy=True),
                )
            )
        app_env = {**base, **pod.env(self.plan.name)}
        if _is_control_plane(pod):  # its /metrics, which the cluster's Prometheus scrapes
            app_env[ADMIN_ADDR_ENV] = f"0.0.0.0:{CONTROLLER_ADMIN_PORT}"
        containers.append(
            Container(
                pod, "app", python_argv(pod.workload.command), app_env, self.state.pod_log(pod.name)
            )
        )
        return containers

    # ---- running --------------------------------------------------------------------------

    def tick(self) -> None:
        self.apply_requests()
        self._remove_terminated()
        self.prometheus.check()
        now = self.clock()
        for c in self.containers:
            code = c.reap()
            if code is not None:
                delay = min(BACKOFF_FIRST * 2**c.restarts, BACKOFF_MAX)
                c.restart_at = now + delay
                self.say(f"{c.pod.name}/{c.kind} exited ({code}); restarting in {delay:g}s")
            if c.popen is None and c.restart_at is not None and now >= c.restart_at:
                c.restarts += 1
                c.restart_at = None
                c.start(self.state.dir)
        ready = {pod.name: self._probe(pod) for pod in self.plan.pods}
        if ready != self.ready:
            changed = sorted(k for k in ready if ready[k] != self.ready.get(k))
            self.ready = ready
            self.say("ready changed: " + ", ".join(f"{k}={ready[k]}" for k in changed))
            self.publish()
        else:
            self.write_status("running")

    # ---- scaling --------------------------------------------------------------------------

    def apply_requests(self) -> None:
        for workload, replicas in self.state.take_scale_requests():
            try:
                if replicas is None:
                    raise RuntimeEnvError("the request was not a replica count")
                self.scale(workload, replicas)
            except LacewingError as exc:
                self.say(f"scale {workload}: {exc.message}")
                self.state.fail_request(workload, exc.message)

    def scale(self, workload: str, replicas: int) -> None:
        busy = [pod for _, pod, _ in self.terminating]
        scaled = scale_plan(self.plan, workload, replicas, busy=busy)
        self.plan = scaled.plan
        for pod in scaled.removed:
            mine = [c for c in self.containers if c.pod is pod]
            self.containers = [c for c in self.containers if c.pod is not pod]
            self.ready.pop(pod.name, None)
            self.terminating.append((self.clock() + DRAIN, pod, mine))
        for pod in scaled.added:
            self._build_pod(pod)
            if pod.meshed:
                write_token(self.state.identity_dir, pod)
            started = self._containers(pod)
            self.containers.extend(started)
            for container in started:
                container.start(self.state.dir)
        names = [f"+{p.name}" for p in scaled.added] + [f"-{p.name}" for p in scaled.removed]
        self.say(f"scaled {workload} to {replicas}: {' '.join(names) or 'no change'}")
        self.publish()

    def _remove_terminated(self) -> None:
        now = self.clock()
        for entry in [t for t in self.terminating if t[0] <= now]:
            _, pod, containers = entry
            _stop(containers)
            netns.delete_netns(pod.netns)
            netns.remove_etc(pod.netns)
            self.built.remove(pod.netns)
            self.terminating.remove(entry)
            self.say(f"removed pod {pod.name}")

    def _probe(self, pod: PodPlan) -> bool:
        mine = [c for c in self.containers if c.pod is pod]
        if not mine or not all(c.running() for c in mine):
            return False
        ports = [p.port for p in pod.workload.ports]

        def probe() -> bool:
            if not all(netns.port_open(port, timeout=0.3) for port in ports):
                return False
            if pod.meshed:
                try:
                    status, _ = netns.http_get("127.0.0.1", ADMIN_PORT, "/ready", timeout=0.5)
                except OSError:
                    return False
                return status == 200
            return True

        try:
            return netns.in_netns(pod.netns, probe, timeout=3)
        except OSError:
            return False

    def publish(self) -> None:
        """New revision: registry.json, then every pod's Service chain, then status.json."""
        self.revision += 1
        registry = self.plan.registry(self.revision, self.ready)
        write_json(self.state.registry_file, registry.to_dict())
        restore = services_restore(self.plan.name, registry)
        for pod in self.plan.pods:
            netns.apply_services(pod.netns, restore)
        self.prometheus.write_targets(self.plan.pods)
        self.write_status("running" if self.containers else "starting")

    def write_status(self, phase: str, error: str | None = None) -> None:
        pods = []
        for pod in self.plan.pods:
            mine = {c.kind: c for c in self.containers if c.pod is pod}
            pods.append(
                {
                    "name": pod.name,
                    "namespace": pod.namespace,
                    "workload": pod.workload.name,
                    "ip": pod.ip,
                    "netns": pod.netns,
                    "meshed": pod.meshed,
                    "ready": self.ready.get(pod.name, False),
                    "restarts": sum(c.restarts for c in mine.values()),
                    "pids": {k: c.pid for k, c in mine.items()},
                }
            )
        workloads = {
            w.name: {
                "replicas": sum(1 for p in self.plan.pods if p.workload.name == w.name),
                "ready": sum(
                    1
                    for p in self.plan.pods
                    if p.workload.name == w.name and self.ready.get(p.name, False)
                ),
            }
            for w in self.plan.workloads
        }
        status: dict[str, object] = {
            "cluster": self.plan.name,
            "workloads": workloads,
            "phase": phase,
            "supervisor": os.getpid(),
            "revision": self.revision,
            "services": [s.to_dict() for s in self.plan.services],
            "pods": pods,
        }
        if error:
            status["error"] = error
        with contextlib.suppress(OSError):
            write_json(self.state.status_file, status)

    def run(self) -> None:
        while not self.stopping:
            try:
                self.tick()
            except LacewingError as exc:
                # e.g. iptables-restore failed for a moment: say so, and publish again next tick
                self.say(f"error: {exc.message}")
                self.ready = {}
            time.sleep(TICK)

    # ---- stopping -------------------------------------------------------------------------

    def teardown(self) -> None:
        self.prometheus.stop()
        _stop([*self.containers, *(c for _, _, mine in self.terminating for c in mine)])
        for space in [*self.built[1:], *self.built[:1]]:
            netns.delete_netns(space)
            netns.remove_etc(space)
        self.say("torn down")


def _stop(containers: list[Container]) -> None:
    """SIGTERM every process group, SIGKILL what is left after STOP_GRACE."""
    for c in containers:
        c.signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for c in containers:
        while c.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        c.signal(signal.SIGKILL)
        if c.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.popen.wait(timeout=2)


def _stop_on_signal(supervisor: Supervisor) -> None:
    def handler(signum: int, frame: object) -> None:
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lacewing-local-supervisor")
    parser.add_argument("--name", required=True)
    parser.add_argument("--file", required=True)
    args = parser.parse_args(argv)
    state = ClusterState(args.name)
    state.dir.mkdir(parents=True, exist_ok=True)
    (state.pid_file).write_text(f"{os.getpid()}\n")
    supervisor: Supervisor | None = None
    code = 0
    try:
        cluster = load_cluster_file(args.file)
        write_policy_file(state.dir, cluster)  # read by the lacewing-policy pod
        spec = with_control_plane(cluster, state.dir)
        plan = plan_cluster(args.name, spec)
        supervisor = Supervisor(plan, state)
        _stop_on_signal(supervisor)
        supervisor.build()
        supervisor.run()
    except LacewingError as exc:
        code = 1
        sys.stderr.write(f"error: {exc.message}\n")
        if supervisor is not None:
            supervisor.write_status("failed", exc.message)
    except Exception as exc:
        code = 1
        traceback.print_exc()
        if supervisor is not None:
            supervisor.write_status("failed", f"{type(exc).__name__}: {exc}")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if supervisor is not None:
            supervisor.teardown()
        if code == 0:
            shutil.rmtree(state.dir, ignore_errors=True)
        else:
            # Leave status.json and the logs for `up` to show; the next up/down sweeps them.
            with contextlib.suppress(OSError):
                state.pid_file.unlink()
    return code


if __name__ == "__main__":
    sys.exit(main())
