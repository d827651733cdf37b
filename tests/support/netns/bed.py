"""A throw-away "node" of network-namespace "pods" for root integration tests.

Layout (all names start with `lwt-<id>-`, `<id>` random per cluster):

    host netns (untouched: nothing is created here but the namespace names)
    lwt-<id>-node   bridge `lwtbr0`, no address, no default route, no link to the host
      ├── veth lwtv<n>  ───  lwteth0 in lwt-<id>-<pod>   10.<x>.<y>.<10+n>/24, lo up
      └── ...
    Pods have only their /24 connected route: no default route anywhere, and the node has
    no link out, so no packet can leave the node.

Every process is started in its own session (process group = its PID) through
`ip netns exec`, and is stopped by that PID: SIGTERM to the group, then SIGKILL. `close()`
stops them all and deletes the namespaces; it is safe to call twice and after a failure.

A cluster claims its id by writing `/run/lwt-owners/<id>` with the owning PID; `sweep()`
(called at session start) removes namespaces whose owner is gone, killing anything still
inside them, so an interrupted run is cleaned up by the next one and a parallel run is
left alone.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from lacewing.local import netns as local_netns

T = TypeVar("T")

PREFIX = "lwt"
OWNERS = Path("/run/lwt-owners")
REPO = Path(__file__).resolve().parents[3]
PYTHON = sys.executable


class BedError(RuntimeError):
    """The test bed could not be built or a process in it misbehaved."""


def sh(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise BedError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@dataclass
class Proc:
    """A process started in a pod, owned by the test; `stop()` kills its process group."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def status_field(self, key: str) -> str:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
        raise BedError(f"{self.name}: no {key} in /proc/{self.pid}/status")

    def rss_kib(self) -> int:
        return int(self.status_field("VmRSS").split()[0])

    def uids(self) -> tuple[int, ...]:
        return tuple(int(u) for u in self.status_field("Uid").split())

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self, grace: float = 3.0) -> None:
        if self.popen.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.pid, signal.SIGKILL)  # stragglers in the group, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class Pod:
    """One pod: a network namespace with an address on the node's bridge."""

    name: str
    netns: str
    ip: str
    cluster: Cluster
    procs: list[Proc] = field(default_factory=list)

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 30,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command in the pod to completion (as root) and capture its output."""
        return subprocess.run(
            self.command(argv),
            capture_output=True,
            timeout=timeout,
            input=input,
            env=None if env is None else {**os.environ, **env},
            check=False,
        )

    def spawn(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> Proc:
        """Start a long-running process in the pod, in its own process group."""
        log = self.cluster.logdir / f"{self.name}-{name}.log"
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        full_env.update(env or {})
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                self.command(argv),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=REPO,
                start_new_session=True,
            )
        proc = Proc(f"{self.name}/{name}", popen, log)
        self.procs.append(proc)
        return proc

    def lacewing(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
        return self.run([PYTHON, "-m", "lacewing.cli.main", *args], timeout=timeout)

    def proxy_init(self, *flags: str) -> subprocess.CompletedProcess[bytes]:
        result = self.lacewing("proxy-init", *flags)
        if result.returncode != 0:
            raise BedError(f"{self.name}: proxy-init failed: {result.stderr.decode().strip()}")
        return result

    def nat_rules(self) -> list[str]:
        out = self.run(["iptables", "-t", "nat", "-S"]).stdout.decode()
        return [line for line in out.splitlines() if line.startswith("-A ")]

    def curl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
        """`curl` inside the pod: -sS, bounded by --max-time."""
        return self.run(
            ["curl", "-sS", "--max-time", str(int(timeout)), *args], timeout=timeout + 5
        )

    def in_netns(self, fn: Callable[[], T], timeout: float = 10) -> T:
        """Call `fn()` on a fresh thread that has entered this pod's network namespace.

        The namespace is per thread in Linux, so the test's own threads stay where they are;
        sockets made by `fn` keep the pod's namespace for their whole life.
        """
        try:
            return local_netns.in_netns(self.netns, fn, timeout)
        except TimeoutError:
            raise BedError(f"{self.name}: call in the pod's namespace timed out") from None

    def connect(self, host: str, port: int, timeout: float = 5) -> socket.socket:
        """A TCP socket created inside the pod (so the pod's iptables rules apply to it)."""

        def dial() -> socket.socket:
            return socket.create_connection((host, port), timeout=timeout)

        return self.in_netns(dial, timeout=timeout + 1)

    def wait_port(self, port: int, host: str = "127.0.0.1", timeout: float = 10) -> None:
        """Wait until something accepts TCP at host:port inside the pod."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connect(host, port, timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise BedError(f"{self.name}: nothing listens on {host}:{port}") from None
                time.sleep(0.05)

    def start_app(self, kind: str, port: int, *extra: str) -> Proc:
        """Start one of tests/support/netns/apps.py's servers and wait until it listens."""
        proc = self.spawn(
            f"app-{kind}-{port}",
            [PYTHON, "-m", "tests.support.netns.apps", kind, "--port", str(port), *extra],
        )
        try:
            self.wait_port(port)
        except BedError:
            raise BedError(f"{proc.name} did not start:\n{proc.log_tail()}") from None
        return proc

    def start_proxy(
        self, env: Mapping[str, str] | None = None, *, uid: int = 2102, ready: bool = True
    ) -> Proc:
        """Start `lacewing proxy` as root with RUN_AS_UID set; wait for /ready on 4191."""
        proxy_env = {
            "LACEWING_PROXY_RUN_AS_UID": str(uid),
            "LACEWING_PROXY_RUN_AS_GID": str(uid),
            "LACEWING_PROXY_LOG_LEVEL": "info",
        }
        proxy_env.update(env or {})
        proc = self.spawn("proxy", [PYTHON, "-m", "lacewing.cli.main", "proxy"], env=proxy_env)
        if ready:
            self.wait_http_ok(4191, "/ready", proc=proc)
        return proc

    def wait_http_ok(
        self, port: int, path: str, *, proc: Proc | None = None, timeout: float = 15
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if proc is not None and not proc.alive():
                raise BedError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log_tail()}")
            try:
                status, _ = http_get(self, "127.0.0.1", port, path, timeout=1)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                tail = proc.log_tail() if proc else ""
                raise BedError(f"{self.name}: GET {path} on :{port} never said 200\n{tail}")
            time.sleep(0.1)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def http_get(pod: Pod, host: str, port: int, path: str, *, timeout: float = 5) -> tuple[int, bytes]:
    """A minimal HTTP/1.1 GET from inside `pod`; returns (status, body)."""
    sock = pod.connect(host, port, timeout=timeout)
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return status, body


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


class Cluster:
    """A node namespace with a bridge, and pods attached to it. Use as a context manager."""

    def __init__(self, logdir: Path, prefix: str | None = None) -> None:
        self.id = secrets.token_hex(3)
        self.prefix = prefix or PREFIX  # another role's tests may use their own prefix
        self.logdir = logdir
        self.node = f"{self.prefix}-{self.id}-node"
        self.subnet = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
        self.pods: dict[str, Pod] = {}
        self._closed = False

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        _raise_fd_limit()
        OWNERS.mkdir(parents=True, exist_ok=True)
        (OWNERS / self.id).write_text(str(os.getpid()))
        self.logdir.mkdir(parents=True, exist_ok=True)
        try:
            sh("ip", "netns", "add", self.node)
            sh("ip", "-n", self.node, "link", "set", "lo", "up")
            sh("ip", "-n", self.node, "link", "add", "lwtbr0", "type", "bridge")
            sh("ip", "-n", self.node, "link", "set", "lwtbr0", "up")
        except BaseException:
            self.close()
            raise

    def add_pod(self, name: str) -> Pod:
        """Create a pod namespace joined to the bridge; lo and its veth are up."""
        if self._closed:
            raise BedError("cluster is closed")
        index = len(self.pods)
        netns = f"{self.prefix}-{self.id}-{name}"
        ip = f"{self.subnet}.{10 + index}"
        pod = Pod(name, netns, ip, self)
        self.pods[name] = pod  # registered first so close() removes a half-built pod
        host_end = f"lwtv{index}"
        sh("ip", "netns", "add", netns)
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        sh(
            "ip", "-n", self.node, "link", "add", host_end, "type", "veth",
            "peer", "name", "lwteth0", "netns", netns,
        )  # fmt: skip
        sh("ip", "-n", self.node, "link", "set", host_end, "master", "lwtbr0", "up")
        sh("ip", "-n", netns, "addr", "add", f"{ip}/24", "dev", "lwteth0")
        sh("ip", "-n", netns, "link", "set", "lwteth0", "up")
        return pod

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pod in self.pods.values():
            pod.stop_all()
        for netns in [pod.netns for pod in self.pods.values()] + [self.node]:
            _delete_netns(netns)
        with contextlib.suppress(FileNotFoundError):
            (OWNERS / self.id).unlink()


def _raise_fd_limit(wanted: int = 16384) -> None:
    """Flood tests hold hundreds of sockets here and in the proxies, which inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _delete_netns(netns: str) -> None:
    if not Path(f"/run/netns/{netns}").exists():
        return
    pids = sh("ip", "netns", "pids", netns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    sh("ip", "netns", "del", netns, check=False)


def sweep(prefix: str = PREFIX) -> list[str]:
    """Delete leftover `<prefix>-*` namespaces whose owning test process is gone."""
    removed: list[str] = []
    listing = sh("ip", "netns", "list", check=False).stdout.splitlines()
    for line in listing:
        netns = line.split()[0] if line.split() else ""
        parts = netns.split("-")
        if len(parts) < 3 or parts[0] != prefix:
            continue
        if _owner_alive(parts[1]):
            continue
        _delete_netns(netns)
        removed.append(netns)
    if OWNERS.exists():
        for owner in OWNERS.iterdir():
            if not _owner_alive(owner.name):
                with contextlib.suppress(FileNotFoundError):
                    owner.unlink()
    return removed


def _owner_alive(cluster_id: str) -> bool:
    try:
        pid = int((OWNERS / cluster_id).read_text())
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def cluster(logdir: Path) -> Iterator[Cluster]:
    with Cluster(logdir) as c:
        yield c
