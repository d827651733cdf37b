"""`lacewing proxy` as a process: start-up, privilege drop, SIGTERM."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_get(port: int, path: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, name="hello-backend", daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


CLI = ["-m", "lacewing.cli.main", "proxy"]
LEAN = ["-m", "lacewing.proxy"]


def _start(
    env_extra: dict[str, str], argv: list[str] = CLI
) -> tuple[subprocess.Popen[bytes], int, int]:
    out_port, admin_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LACEWING_PROXY_")}
    env.update(
        LACEWING_PROXY_OUTBOUND_LISTEN_ADDR=f"127.0.0.1:{out_port}",
        LACEWING_PROXY_INBOUND_LISTEN_ADDR="127.0.0.1:0",
        LACEWING_PROXY_ADMIN_LISTEN_ADDR=f"127.0.0.1:{admin_port}",
        **env_extra,
    )
    proc = subprocess.Popen(
        [sys.executable, *argv],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if _http_get(admin_port, "/ready")[0] == 200:
                return proc, out_port, admin_port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"proxy never became ready: {proc.communicate()[1].decode()}")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_root_start_drops_to_run_as_uid_and_keeps_serving(backend: int) -> None:
    proc, out_port, admin_port = _start(
        {
            "LACEWING_PROXY_RUN_AS_UID": "2102",
            "LACEWING_PROXY_OUTBOUND_FIXED_DST": f"127.0.0.1:{backend}",
        }
    )
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            ids = {
                line.split(":")[0]: line.split()[1:] for line in f if line[:4] in ("Uid:", "Gid:")
            }
        assert ids["Uid"] == ["2102"] * 4 and ids["Gid"] == ["2102"] * 4
        assert _http_get(out_port, "/") == (200, b"ok")
        status, metrics = _http_get(admin_port, "/metrics")
        assert status == 200 and b"request_total{" in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        proc.stderr.close()  # type: ignore[union-attr]


@pytest.mark.parametrize("argv", [CLI, LEAN], ids=["lacewing-proxy", "python-m"])
def test_sigterm_exits_cleanly(argv: list[str]) -> None:
    proc, _, _ = _start({}, argv)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    assert "Traceback" not in err and "proxy stopped" in err


def test_lean_entry_point_reports_bad_config_in_one_line() -> None:
    env = {**os.environ, "LACEWING_PROXY_OPAQUE_PORTS": "25,x"}
    done = subprocess.run([sys.executable, *LEAN], env=env, capture_output=True, timeout=30)
    assert done.returncode == 2
    first = done.stderr.decode().splitlines()[0]
    assert first == "Error: LACEWING_PROXY_OPAQUE_PORTS: 'x' is not a port (1-65535)"


def test_a_serving_proxy_runs_one_thread_without_idna_or_hashlib(backend: int) -> None:
    """Its listeners are bound without getaddrinfo (no libuv thread pool, no idna codec) and
    it never mints a token (no hashlib/hmac): what a sidecar would carry for nothing."""
    proc, out_port, _ = _start({"LACEWING_PROXY_OUTBOUND_FIXED_DST": f"127.0.0.1:{backend}"}, LEAN)
    try:
        assert _http_get(out_port, "/") == (200, b"ok")
        threads = os.listdir(f"/proc/{proc.pid}/task")
        with open(f"/proc/{proc.pid}/maps") as f:
            mapped = {line.split()[-1].rsplit("/", 1)[-1].split(".")[0] for line in f}
        assert len(threads) == 1
        assert not {"_hashlib", "unicodedata"} & mapped
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        proc.stderr.close()  # type: ignore[union-attr]
