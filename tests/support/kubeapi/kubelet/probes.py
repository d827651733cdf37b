"""Readiness, liveness and startup probes: when to run one, and what its results mean.

`Prober` is the pure part: built from a probe spec, given the time the container started,
it says when the next check is due (`initialDelaySeconds`, then every `periodSeconds`) and
folds results into a state with Kubernetes' thresholds: `failureThreshold` failures in a
row make it fail, `successThreshold` successes make it pass. Readiness and startup
probers start failed (not ready, not started), a liveness prober starts passed;
`exhausted` says failureThreshold failures in a row were seen (the container is killed for a
failing liveness or startup probe). The runtime may cap the
period (`max_period`) so a test bed does not wait ten seconds between readiness checks.

`check(probe, pod_ip, ports, run_exec)` does one check, from the node's network namespace
(the caller enters it), as the kubelet probes from the node:
- httpGet: an HTTP/1.1 GET to host (default the pod IP):port + path; 200-399 passes;
- tcpSocket: the connection is accepted;
- exec: `run_exec(command, timeout)` returns the exit code; 0 passes.
Named ports are looked up in the container's ports. `timeoutSeconds` bounds every check.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Prober", "check", "resolve_port"]


@dataclass
class Prober:
    spec: Mapping[str, Any]
    kind: str  # readiness | liveness | startup
    started: float
    max_period: float | None = None
    passing: bool = field(init=False)
    _next: float = field(init=False)
    _failures: int = 0
    _successes: int = 0
    in_flight: bool = False

    def __post_init__(self) -> None:
        self.passing = self.kind == "liveness"
        self._next = self.started + float(self.spec.get("initialDelaySeconds", 0))

    @property
    def period(self) -> float:
        period = float(self.spec.get("periodSeconds", 10))
        return min(period, self.max_period) if self.max_period else period

    @property
    def timeout(self) -> float:
        return float(self.spec.get("timeoutSeconds", 1))

    @property
    def exhausted(self) -> bool:
        return self._failures >= int(self.spec.get("failureThreshold", 3))

    def due(self, now: float) -> bool:
        return not self.in_flight and now >= self._next

    def record(self, ok: bool, now: float) -> bool:
        """Fold in one result; returns whether the state changed."""
        self.in_flight = False
        self._next = now + self.period
        before = self.passing
        if ok:
            self._failures = 0
            self._successes += 1
            if self._successes >= int(self.spec.get("successThreshold", 1)):
                self.passing = True
        else:
            self._successes = 0
            self._failures += 1
            if self._failures >= int(self.spec.get("failureThreshold", 3)):
                self.passing = False
        return before != self.passing


def resolve_port(port: int | str, ports: Sequence[Mapping[str, Any]]) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in ports:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"port {port!r} is not a named port of the container")


def _http(host: str, port: int, path: str, scheme: str, timeout: float) -> bool:
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock: socket.socket = raw
        if scheme.upper() == "HTTPS":  # the kubelet does not verify probe certificates
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(raw, server_hostname=host)
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.31\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            head += chunk
    parts = head.split(b" ", 2)
    return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400


def check(
    probe: Mapping[str, Any],
    pod_ip: str,
    ports: Sequence[Mapping[str, Any]],
    run_exec: Callable[[list[str], float], int],
) -> bool:
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = resolve_port(get["port"], ports)
            return _http(
                get.get("host") or pod_ip,
                port,
                get.get("path", "/"),
                get.get("scheme", "HTTP"),
                timeout,
            )
        if "tcpSocket" in probe:
            tcp = probe["tcpSocket"]
            port = resolve_port(tcp["port"], ports)
            socket.create_connection((tcp.get("host") or pod_ip, port), timeout=timeout).close()
            return True
        if "exec" in probe:
            return run_exec(list(probe["exec"].get("command") or []), timeout) == 0
    except (OSError, ValueError):
        return False
    return False
