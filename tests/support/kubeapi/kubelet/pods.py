"""One pod on the node: its namespace, volumes and containers, driven one tick at a time.

`PodRunner.tick(now)` moves the pod along, as the kubelet's pod workers do:
1. set up once: the pod's network namespace (`network.py`), its hosts and resolv.conf;
   then its volumes (`volumes.py`), retried every second while a Secret or ConfigMap it
   needs is missing;
2. init containers in spec order: a regular one must exit 0 before the next starts (a
   failure is retried with back-off, or fails the pod under restartPolicy Never); a native
   sidecar (`restartPolicy: Always`) is started, the next one waits until it has started
   (its startup probe passed, if it has one), and it keeps running, restarted whenever it
   exits, for the pod's whole life, as Kubernetes 1.29+ runs them;
3. then every container; exited ones restart under the pod's restartPolicy, with back-off.
   Before the first long-running container starts, the pod's nat OUTPUT gets its jump to
   the Service chain (after proxy-init's, which has run by then);
4. probes run on the runtime's thread pool from the node's namespace; their results fold
   in on a later tick.
A deleted pod (gone from the store) gets SIGTERM in its regular containers, then, once
those have exited, in its sidecars (last first); whatever still runs at
terminationGracePeriodSeconds is SIGKILLed; then the namespace and files go.
A container's process is `ip netns exec <pod> python -I -S launch.py SPEC` (`launch.py`
mounts the volumes and execs setpriv and the program); its output is appended to
`<pod dir>/logs/<container>.log`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lacewing.local.netns import in_netns
from tests.support.kubeapi.kubelet import images, probes, security, volumes
from tests.support.kubeapi.kubelet.containers import Backoff, ContainerRun, LaunchError
from tests.support.kubeapi.kubelet.envs import EnvError, Lookup, container_env, expand_all
from tests.support.kubeapi.kubelet.network import Network
from tests.support.kubeapi.kubelet.probes import Prober

__all__ = ["PodContext", "PodRunner"]

LAUNCH = str(Path(__file__).with_name("launch.py"))
API_SERVICE_HOST = "10.96.0.1"
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
IMAGE_USERS = {"ghcr.io/lacewing-mesh/lacewing": (2102, 2102)}  # the Dockerfile's USER
log = logging.getLogger("testbed.kubelet")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PodContext:
    """What every pod needs from its node."""

    network: Network
    root: Path
    lookup: Any  # (namespace) -> Lookup
    mint: volumes.MintToken
    ca_pem: bytes
    backoff: Backoff
    max_probe_period: float | None
    pool: ThreadPoolExecutor
    automount: Any  # (pod) -> bool


class PodRunner:
    def __init__(self, pod: dict[str, Any], index: int, ip: str, ctx: PodContext) -> None:
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.name: str = pod["metadata"]["name"]
        self.namespace: str = pod["metadata"]["namespace"]
        self.index = index
        self.ip = ip
        self.ctx = ctx
        self.dir = ctx.root / "pods" / f"{self.namespace}_{self.name}_{self.uid[:8]}"
        self.netns = ctx.network.netns_of(index)
        spec = pod.get("spec") or {}
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.grace = float(spec.get("terminationGracePeriodSeconds", 30))
        self.inits = [
            self._run(c, "sidecar" if c.get("restartPolicy") == "Always" else "init")
            for c in spec.get("initContainers") or []
        ]
        self.mains = [self._run(c, "main") for c in spec.get("containers") or []]
        self.networked = False
        self.volumes: dict[str, Path] | None = None
        self.volume_error = ""
        self._volume_retry = 0.0
        self.jumped = False
        self._probes_run = 0
        self.restore = ""
        self.failed = False
        self.deleting = False
        self.deadline = 0.0
        self.start_time = _stamp()
        self._transitions: dict[str, tuple[str, str]] = {}
        self._pending: list[tuple[Prober, ContainerRun, Future[bool]]] = []

    def _run(self, spec: dict[str, Any], role: str) -> ContainerRun:
        def launch(c: dict[str, Any]) -> subprocess.Popen[bytes]:
            return self._launch(c)

        return ContainerRun(spec, role, launch, self.ctx.backoff, self.ctx.max_probe_period)

    @property
    def all(self) -> list[ContainerRun]:
        return [*self.inits, *self.mains]

    @property
    def sidecars(self) -> list[ContainerRun]:
        return [c for c in self.inits if c.role == "sidecar"]

    # ------------------------------------------------------------------ launching

    def _launch(self, c: dict[str, Any], probe: int = 0) -> subprocess.Popen[bytes]:
        """Start the container's process (or, with `probe`, an exec probe's command in it)."""
        ref = c.get("image", "")
        image = images.resolve(ref)
        if image is None:
            raise LaunchError(
                "ErrImagePull",
                f'failed to pull image "{ref}": the test-bed kubelet knows no such image '
                "(tests/support/kubeapi/kubelet/images.py lists the images it can run)",
            )
        assert self.volumes is not None
        lookup: Lookup = self.ctx.lookup(self.namespace)
        try:
            env = {
                "PATH": image.env.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                **image.env,
                "HOSTNAME": self.name,
                "HOME": "/",  # what containerd sets for a user the image's passwd lacks
                "KUBERNETES_SERVICE_HOST": API_SERVICE_HOST,
                "KUBERNETES_SERVICE_PORT": "443",
                "KUBERNETES_SERVICE_PORT_HTTPS": "443",
                **container_env(self.pod, c, lookup),
            }
            spec_c = {
                **c,
                "command": expand_all(c.get("command"), env),
                "args": expand_all(c.get("args"), env),
            }
            argv = images.argv(image, spec_c)
            user = IMAGE_USERS.get(images.split_reference(ref)[0], (0, 0))
            prefix, _uid = security.setpriv_argv(self.pod.get("spec") or {}, c, user)
            mounts = volumes.mounts(c, self.volumes)
        except (EnvError, security.SecurityError, volumes.VolumeError) as exc:
            raise LaunchError("CreateContainerConfigError", str(exc)) from None
        if not argv:
            raise LaunchError("CreateContainerError", "no command specified")
        if not self.jumped and not probe and self._role(c) != "init":
            self.ctx.network.ensure_jump(self.netns)
            self.ctx.network.apply_services(self.netns, self.restore)
            self.jumped = True
        suffix = f".probe{probe}" if probe else ""
        spec_file = self.dir / f"{c['name']}{suffix}.launch.json"
        spec_file.write_text(
            json.dumps(
                {
                    "mounts": mounts,
                    "setpriv": prefix,
                    "argv": argv,
                    "env": env,
                    "workingDir": c.get("workingDir", ""),
                }
            )
        )
        logs = self.dir / "logs"
        logs.mkdir(exist_ok=True)
        log_file = os.devnull if probe else logs / f"{c['name']}.log"
        with open(log_file, "ab") as out:
            return subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.netns,
                    sys.executable,
                    "-I",
                    "-S",
                    LAUNCH,
                    str(spec_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _role(self, c: dict[str, Any]) -> str:
        return next((r.role for r in self.all if r.name == c["name"]), "main")

    def run_exec(self, c: ContainerRun, command: list[str], timeout: float) -> int:
        """An exec probe: the command in the container's namespaces, user and mounts."""
        spec = {**c.spec, "command": command, "args": []}
        self._probes_run += 1
        try:
            proc = self._launch(spec, probe=self._probes_run)
        except LaunchError:
            return 1
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return 1
        finally:
            (self.dir / f"{c.name}.probe{self._probes_run}.launch.json").unlink(missing_ok=True)

    # ------------------------------------------------------------------ driving

    def tick(self, now: float, hosts: str, resolv: str, restore: str) -> None:
        self.restore = restore
        if not self.networked:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.ctx.network.add_pod(self.index, self.ip, hosts, resolv)
            self.networked = True
        for c in self.all:
            c.poll(now)
        if self.deleting:
            self._terminating(now)
            return
        if self.volumes is None:
            if now < self._volume_retry:
                return
            try:
                self.volumes = volumes.prepare(
                    self.pod,
                    self.dir / "volumes",
                    self.ctx.lookup(self.namespace),
                    self.ctx.mint,
                    self.ctx.ca_pem,
                    API_AUDIENCE,
                    self.ctx.automount(self.pod),
                )
            except volumes.VolumeError as exc:
                self.volume_error = f"MountVolume.SetUp failed: {exc}"
                for c in self.all:
                    c.waiting = ("ContainerCreating", self.volume_error)
                self._volume_retry = now + 1.0
                return
            self.volume_error = ""
        if self.failed:
            return
        self._collect_probes(now)
        initialized = self._run_inits(now)
        if initialized:
            for c in self.mains:
                if self._should_start(c, now):
                    c.start(now)
        for c in self.sidecars:
            if c.terminated is not None and c.may_start(now):
                c.start(now)
        self._probe(now)

    def _should_start(self, c: ContainerRun, now: float) -> bool:
        if not c.may_start(now):
            return False
        if c.terminated is None:
            return True
        if self.restart_policy == "Always":
            return True
        return self.restart_policy == "OnFailure" and not c.succeeded

    def _run_inits(self, now: float) -> bool:
        for c in self.inits:
            if c.role == "sidecar":
                if (
                    c.may_start(now)
                    and c.terminated is None
                    and c.restart_count == 0
                    and not c.started_at
                ):
                    c.start(now)
                if not c.started:
                    return False
                continue
            if c.succeeded:
                continue
            if c.terminated is not None and self.restart_policy == "Never":
                self.failed = True
                return False
            if c.may_start(now):
                c.start(now)
            return False
        return True

    def _probe(self, now: float) -> None:
        for c in self.all:
            if not c.running:
                continue
            if c.startup is not None and not c.startup.passing:
                probers = [c.startup]  # the other probes wait until it has passed
            else:
                probers = [p for p in (c.readiness, c.liveness) if p is not None]
            for prober in probers:
                if prober.due(now):
                    prober.in_flight = True
                    self._pending.append((prober, c, self.ctx.pool.submit(self._check, prober, c)))

    def _check(self, prober: Prober, c: ContainerRun) -> bool:
        ports = c.spec.get("ports") or []
        if "exec" in prober.spec:
            return probes.check(
                prober.spec, self.ip, ports, lambda cmd, t: self.run_exec(c, cmd, t)
            )
        return in_netns(
            self.ctx.network.node,
            lambda: probes.check(prober.spec, self.ip, ports, lambda cmd, t: 1),
            timeout=prober.timeout + 5,
        )

    def _collect_probes(self, now: float) -> None:
        still = []
        for prober, c, future in self._pending:
            if not future.done():
                still.append((prober, c, future))
                continue
            try:
                ok = future.result()
            except Exception:
                ok = False
            if c.running and prober in (c.readiness, c.liveness, c.startup):
                prober.record(ok, now)
                if prober.kind in ("liveness", "startup") and prober.exhausted:
                    log.info("%s/%s: %s probe failed, killing", self.name, c.name, prober.kind)
                    c.kill_for_liveness(now, self.grace)
        self._pending = still

    def delete(self, now: float) -> None:
        if not self.deleting:
            self.deleting = True
            self.deadline = now + self.grace
            for c in self.mains:
                c.terminate(self.grace, now)
            for c in self.inits:
                if c.role == "init":
                    c.terminate(self.grace, now)

    def _terminating(self, now: float) -> None:
        if any(c.running for c in self.mains):
            return
        for c in reversed(self.sidecars):
            c.terminate(max(self.deadline - now, 0.0), now)
            if c.running:
                return

    @property
    def finished(self) -> bool:
        return self.deleting and not any(c.running for c in self.all)

    def teardown(self) -> None:
        for c in self.all:
            c.terminate(0, 0)
            c.poll(float("inf"))
            if c.proc is not None:
                c.proc.wait(5)
                c.poll(float("inf"))
        self.ctx.network.remove_pod(self.index)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ status

    def _condition(self, kind: str, ok: bool) -> dict[str, Any]:
        flag = "True" if ok else "False"
        last = self._transitions.get(kind)
        if last is None or last[0] != flag:
            last = (flag, _stamp())
            self._transitions[kind] = last
        return {"type": kind, "status": flag, "lastProbeTime": None, "lastTransitionTime": last[1]}

    def phase(self) -> str:
        if self.failed:
            return "Failed"
        initialized = all(c.succeeded or (c.role == "sidecar" and c.started) for c in self.inits)
        if not initialized or not any(c.started_at for c in self.mains):
            return "Pending"
        if self.restart_policy != "Always" and all(
            c.terminated and not c.running for c in self.mains
        ):
            if all(c.succeeded for c in self.mains):
                return "Succeeded"
            if self.restart_policy == "Never":
                return "Failed"
        return "Running"

    def status(self) -> dict[str, Any]:
        initialized = all(c.succeeded or (c.role == "sidecar" and c.started) for c in self.inits)
        ready = (
            initialized and all(c.ready for c in self.mains) and all(c.ready for c in self.sidecars)
        )
        image_id = {c.name: f"{c.spec.get('image', '')}@sha256:{'0' * 64}" for c in self.all}
        status: dict[str, Any] = {
            "phase": self.phase(),
            "hostIP": "192.168.49.2",
            "hostIPs": [{"ip": "192.168.49.2"}],
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "startTime": self.start_time,
            "qosClass": "Burstable",
            "conditions": [
                self._condition("PodReadyToStartContainers", self.networked),
                self._condition("Initialized", initialized),
                self._condition("Ready", ready),
                self._condition("ContainersReady", ready),
                self._condition("PodScheduled", True),
            ],
            "containerStatuses": [c.status(image_id[c.name]) for c in self.mains],
        }
        if self.inits:
            status["initContainerStatuses"] = [c.status(image_id[c.name]) for c in self.inits]
        if self.volume_error:
            status["message"] = self.volume_error
        return status
