"""Processes of one benchmark run: start pinned, wait until ready, sample, and always clean up.

`Supervisor` is a context manager. Every process is started through it with
`taskset -c CPU` prepended (taskset execs, so the PID we hold is the program's own PID) and in
its own process group, so a Ctrl-C in the terminal reaches only us and we stop children in
order. On leaving the `with` block, by success, exception, Ctrl-C or SIGTERM (turned into
`SystemExit` by `install_sigterm_handler`), each child still alive gets SIGTERM, then SIGKILL
after a grace period, by PID. Nothing is ever stopped by name.

Readiness is polled, never slept for: `wait_tcp` connects until the port accepts,
`wait_http_ok` GETs a URL (lacewing's admin `/ready`) until it answers 200. Both give up with a
`BenchError` that carries the tail of the child's log.

CPU and memory are read from /proc: `cpu_seconds(pid)` is (utime, stime), children excluded,
`rss_mib(pid)` is VmRSS and `mem_sample(pid)` is RSS, PSS and private anonymous memory from
/proc/PID/smaps_rollup. Each child keeps when it was exec'd (`started`); `wait_http_ok` sets
`ready_s`, the seconds from exec until the URL first answered 200 (polled every 10 ms).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from bench.parse import (
    MemSample,
    parse_cpu_times,
    parse_proc_stat_ticks,
    parse_rss_kib,
    parse_smaps_rollup,
)

__all__ = [
    "BenchError",
    "Child",
    "Supervisor",
    "core_ticks",
    "cpu_seconds",
    "free_port",
    "install_sigterm_handler",
    "mem_sample",
    "rss_mib",
    "run_tool",
]

_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A benchmark step failed; `hint` says what to do. Printed as one line, no traceback."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def install_sigterm_handler() -> None:
    """Make SIGTERM unwind the stack like Ctrl-C does, so `finally` blocks clean up."""

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds the process has used so far."""
    user, system = parse_proc_stat_ticks(Path(f"/proc/{pid}/stat").read_text())
    return user / _TICKS, system / _TICKS


def core_ticks(cpu: int) -> tuple[int, int]:
    """(busy, total) ticks of one CPU so far, all processes (ours and anyone else's)."""
    return parse_cpu_times(Path("/proc/stat").read_text(), cpu)


def rss_mib(pid: int) -> float:
    return parse_rss_kib(Path(f"/proc/{pid}/status").read_text()) / 1024.0


def mem_sample(pid: int) -> MemSample:
    try:
        return parse_smaps_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())
    except OSError as exc:
        raise BenchError(f"cannot read /proc/{pid}/smaps_rollup: {exc.strerror}") from None


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    started: float = 0.0  # time.monotonic() just before the exec
    ready_s: float | None = None  # exec -> first 200 from wait_http_ok

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 2) -> str:
        """The last lines of the child's output, on one line (for one-line error messages)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise BenchError(
                f"{self.name} exited with status {code}: {self.log_tail() or '(no output)'}",
                hint=f"see {self.log}",
            )


@dataclass
class Supervisor:
    """Owns every long-running child of a run; see the module docstring."""

    workdir: Path
    grace_s: float = 3.0
    children: list[Child] = field(default_factory=list)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpu: int | None,
        env: Mapping[str, str] | None = None,
    ) -> Child:
        pinned = ["taskset", "-c", str(cpu), *argv] if cpu is not None else list(argv)
        log = self.workdir / f"{name}.log"
        started = time.monotonic()
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                pinned,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env} if env is not None else None,
                start_new_session=True,
            )
        child = Child(name, popen, log, started)
        self.children.append(child)
        return child

    def stop(self, child: Child) -> None:
        """SIGTERM, wait up to the grace period, then SIGKILL; by PID only."""
        if child.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.popen.send_signal(signal.SIGTERM)
            try:
                child.popen.wait(self.grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    child.popen.kill()
                child.popen.wait()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.children)):
            self.stop(child)

    def wait_tcp(self, child: Child, port: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            child.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{child.name} did not listen on 127.0.0.1:{port} in time")
            time.sleep(0.05)

    def wait_http_ok(self, child: Child, port: int, path: str, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while True:
            child.check_alive()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    if child.ready_s is None:
                        child.ready_s = time.monotonic() - child.started
                    return
                last = f"status {response.status}"
            except OSError as exc:
                last = str(exc)
            finally:
                conn.close()
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{child.name} not ready: GET 127.0.0.1:{port}{path} -> {last}",
                    hint=f"see {child.log}",
                )
            time.sleep(0.01)


def run_tool(argv: Sequence[str], *, cpu: int | None, timeout_s: float) -> str:
    """Run a load generator to completion, pinned; return its stdout (stderr on failure)."""
    pinned = ["taskset", "-c", str(cpu), *argv] if cpu is not None else list(argv)
    try:
        done = subprocess.run(
            pinned, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{argv[0]} ran past {timeout_s:.0f}s and was killed") from exc
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(argv)} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}"
        )
    return done.stdout
