"""The machine side of the local runtime: network namespaces, links, files and nat rules.

Everything goes through `ip` and `iptables-restore` run as subprocesses; a failing command
raises `RuntimeEnvError` with the command and its own message. The node namespace holds the
bridge and the bridge ends of the pods' veths; nothing is created in the host namespace but
the namespace names (/run/netns) and the per-pod files under /etc/netns/<netns>/.

`in_netns(netns, fn)` runs `fn` on a fresh thread that has entered the namespace with
setns(2) (the namespace is per thread), so the supervisor and the CLI can probe and scrape
pods without spawning a process per request; sockets keep the namespace they were made in.
Deleting a namespace first SIGKILLs whatever still runs in it (`ip netns pids`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from lacewing.errors import RuntimeEnvError
from lacewing.local.plan import BRIDGE, POD_IFACE, SERVICE_SUBNET, PodPlan, services_chain

__all__ = [
    "ETC_NETNS",
    "add_node",
    "add_pod",
    "apply_services",
    "delete_netns",
    "http_get",
    "in_netns",
    "install_services_jump",
    "list_netns",
    "remove_etc",
    "sh",
    "write_etc",
]

T = TypeVar("T")
ETC_NETNS = Path("/etc/netns")
RUN_NETNS = Path("/run/netns")
CLONE_NEWNET = 0x40000000


def sh(
    *argv: str, check: bool = True, input: str | None = None, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, input=input, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise RuntimeEnvError(
            f"{argv[0]} is not installed", hint="install iproute2 and iptables"
        ) from None
    except subprocess.TimeoutExpired:
        raise RuntimeEnvError(f"`{' '.join(argv)}` took longer than {timeout:g}s") from None
    if check and proc.returncode != 0:
        raise RuntimeEnvError(f"`{' '.join(argv)}` failed: {proc.stderr.strip()}")
    return proc


def list_netns(prefix: str) -> list[str]:
    out = sh("ip", "netns", "list", check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.split()]
    return sorted(n for n in names if n.startswith(prefix))


def netns_pids(netns: str) -> list[int]:
    out = sh("ip", "netns", "pids", netns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def delete_netns(netns: str) -> None:
    """Kill what runs in the namespace, then delete it (its veth end goes with it)."""
    if not (RUN_NETNS / netns).exists():
        return
    for pid in netns_pids(netns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    sh("ip", "netns", "del", netns, check=False)


def add_node(node: str) -> None:
    sh("ip", "netns", "add", node)
    sh("ip", "-n", node, "link", "set", "lo", "up")
    sh("ip", "-n", node, "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "-n", node, "link", "set", BRIDGE, "up")


def add_pod(node: str, pod: PodPlan) -> None:
    """A namespace joined to the node's bridge, with a route for Service VIPs on its veth."""
    sh("ip", "netns", "add", pod.netns)
    sh("ip", "-n", pod.netns, "link", "set", "lo", "up")
    sh(
        "ip", "-n", node, "link", "add", pod.veth, "type", "veth",
        "peer", "name", POD_IFACE, "netns", pod.netns,
    )  # fmt: skip
    sh("ip", "-n", node, "link", "set", pod.veth, "master", BRIDGE, "up")
    sh("ip", "-n", pod.netns, "addr", "add", f"{pod.ip}/24", "dev", POD_IFACE)
    sh("ip", "-n", pod.netns, "link", "set", POD_IFACE, "up")
    # A connect() to a VIP needs a route before nat OUTPUT rewrites it to a pod address.
    sh("ip", "-n", pod.netns, "route", "add", f"{SERVICE_SUBNET}.0/24", "dev", POD_IFACE)


def write_etc(netns: str, hosts: str, resolv: str) -> None:
    directory = ETC_NETNS / netns
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("hosts", hosts), ("resolv.conf", resolv)):
        tmp = directory / f".{name}.tmp"
        tmp.write_text(text)
        tmp.chmod(0o644)
        os.replace(tmp, directory / name)


def remove_etc(netns: str) -> None:
    shutil.rmtree(ETC_NETNS / netns, ignore_errors=True)


def list_etc(prefix: str) -> list[str]:
    if not ETC_NETNS.is_dir():
        return []
    return sorted(p.name for p in ETC_NETNS.iterdir() if p.name.startswith(prefix))


def apply_services(netns: str, restore: str) -> None:
    sh("ip", "netns", "exec", netns, "iptables-restore", "--noflush", input=restore)


def install_services_jump(netns: str, cluster: str) -> None:
    """Append OUTPUT -> our Service chain (after proxy-init's jump, if there is one)."""
    chain = services_chain(cluster)
    sh(
        "ip",
        "netns",
        "exec",
        netns,
        "iptables-restore",
        "--noflush",
        input=f"*nat\n:{chain} - [0:0]\nCOMMIT\n",
    )
    sh(
        "ip",
        "netns",
        "exec",
        netns,
        "iptables",
        "-w",
        "5",
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-j",
        chain,
    )


_libc = ctypes.CDLL(None, use_errno=True)


def _enter(netns: str) -> None:
    fd = os.open(RUN_NETNS / netns, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {netns}: {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(netns: str, fn: Callable[[], T], timeout: float = 10) -> T:
    """Call `fn()` on a thread inside the namespace; raise what it raised, or OSError on timeout."""
    values: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            _enter(netns)
            values.append(fn())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=body, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join(timeout)
    if errors:
        raise errors[0]
    if not values:
        raise TimeoutError(f"call inside {netns} timed out")
    return values[0]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Inside the calling thread's namespace: does something accept TCP at host:port?"""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def http_get(
    host: str, port: int, path: str, *, method: str = "GET", timeout: float = 2
) -> tuple[int, bytes]:
    """A minimal HTTP/1.1 request from the calling thread's namespace; (status, body)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/"):
        return 0, b""
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return int(head.split(b" ", 2)[1]), body


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


def exec_argv(netns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]
