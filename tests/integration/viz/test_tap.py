"""`viz tap` / `viz top` against a real local cluster's proxies (root): mTLS tap on 4190.

One cluster (`lwtap`): `srv` x2 (500 for /fail, else 200) and `cli`, meshed, in `ttest`.
While a bounded generator in cli-0 sends a known mix (/x, /y, /fail), `viz tap deploy/srv
--path /x -o json` must show only /x requests, inbound, with cli's identity as source,
srv's as destination, mutual TLS and status 200; `viz top` must rank /x > /y > /fail; a
client with a wrong identity, or plaintext, is refused; and every request the generator sent
during the taps still succeeded (tapping does not touch the data path's outcome).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.local.conftest import REPO, lacewing, leftovers, run_name

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("ip") is None, reason="install Debian package iproute2"),
]

NAME = run_name("lwtap")
NS = "ttest"
STATE = Path("/run/lacewing/local") / NAME
CLUSTER = f"""
workloads:
  - name: srv
    namespace: {NS}
    replicas: 2
    ports: [{{name: http, port: 8080}}]
    command: [python, -m, tests.integration.viz.flaky, "8080"]
    env: {{PYTHONPATH: "{REPO}"}}
  - name: cli
    namespace: {NS}
    command: [sleep, infinity]
"""
SUFFIX = "serviceaccount.identity.lacewing.cluster.local"
COUNT, RATE = 240, 40.0  # 6 s of load


def load(count: int, rate: float) -> dict[str, dict[str, int]]:
    result = lacewing(
        "local", "exec", "--name", NAME, "cli-0", "--",
        sys.executable, str(REPO / "tests/integration/viz/tapload.py"),
        "http://srv:8080", str(count), str(rate),
        timeout=count / rate + 30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    counts: dict[str, dict[str, int]] = json.loads(result.stdout)
    return counts


def during_load(*args: str) -> tuple[tuple[int, str, str], dict[str, dict[str, int]]]:
    """Run `lacewing ARGS` (a tap), start the generator once it says its taps are open,
    stop the tap with Ctrl-C (SIGINT) after it, and return (exit status, stdout, stderr)
    and the generator's counts."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1"}
    env.pop("LACEWING_LOCAL_CLUSTER", None)
    # Ctrl-C as from a terminal: a suite started in the background (`.ci/run &` without job
    # control) has SIGINT ignored, and an ignored signal stays ignored across exec
    proc = subprocess.Popen(
        [sys.executable, "-m", "lacewing.cli.main", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith("tapping 2 pod(s)"), first
        sent = load(COUNT, RATE)
        time.sleep(1.0)  # the last events on their way, then Ctrl-C as a user would
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            # where it hangs: faulthandler prints every thread's stack on SIGABRT
            proc.send_signal(signal.SIGABRT)
            out, err = proc.communicate(timeout=10)
            raise AssertionError(
                f"tap did not end 30 s after Ctrl-C; its threads:\n{err[-6000:]}"
            ) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return (proc.returncode, out, first + err), sent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    lacewing("local", "down", "--name", NAME)
    spec = tmp_path_factory.mktemp("tap") / "cluster.yaml"
    spec.write_text(CLUSTER)
    try:
        up = lacewing("local", "up", "-f", str(spec), "--name", NAME)
        assert up.returncode == 0, up.stderr
        load(12, 20.0)  # warm: connections and discovery in place
        yield
    finally:
        lacewing("local", "down", "--name", NAME)
        assert leftovers(NAME) == []


def _ok(sent: dict[str, dict[str, int]]) -> None:
    """Every request got the app's answer: tapping changed no outcome."""
    n = COUNT // 6
    assert sent == {"/x": {"200": 3 * n}, "/y": {"200": 2 * n}, "/fail": {"500": n}}, sent


def test_tap_shows_the_requests_to_the_path_with_identities(cluster: None) -> None:
    result, sent = during_load(
        "viz", "tap", "deploy/srv", "-n", NS, "--path", "/x", "-o", "json",
        "--local", NAME, "--duration", "60",
    )  # fmt: skip
    code, stdout, stderr = result
    assert code == 0, stderr
    _ok(sent)
    events: list[dict[str, Any]] = [json.loads(line) for line in stdout.splitlines()]
    print(f"generator: {sent}; tap saw {len(events)} events")
    assert len(events) == sent["/x"]["200"], (len(events), sent)
    assert {e["path"] for e in events} == {"/x"}
    assert {e["pod"] for e in events} == {"srv-0", "srv-1"}  # both replicas tapped
    for e in events:
        assert e["direction"] == "inbound" and e["method"] == "GET" and e["status"] == 200, e
        assert e["authority"] == "srv:8080" and e["tls"] == "true", e
        assert e["source"]["identity"] == f"cli.{NS}.{SUFFIX}", e
        assert e["destination"]["identity"] == f"srv.{NS}.{SUFFIX}", e
        assert e["destination"]["pod"] == e["pod"] and e["latency_ms"] > 0, e


def test_top_ranks_the_paths(cluster: None) -> None:
    result, sent = during_load(
        "viz", "top", "deploy/srv", "-n", NS, "-o", "json", "--local", NAME,
        "--duration", "60",
    )  # fmt: skip
    code, stdout, stderr = result
    assert code == 0, stderr
    _ok(sent)
    rows = json.loads(stdout)
    print(rows)
    assert [(r["path"], r["count"]) for r in rows] == [
        ("/x", sent["/x"]["200"]), ("/y", sent["/y"]["200"]), ("/fail", sent["/fail"]["500"]),
    ]  # fmt: skip
    assert [r["success"] for r in rows] == [1.0, 1.0, 0.0]
    table = lacewing("viz", "top", "deploy/srv", "-n", NS, "--local", NAME, "--duration", "1")
    assert table.returncode == 0 and table.stdout.split()[:4] == [
        "SOURCE", "DESTINATION", "METHOD", "PATH",
    ], table.stdout  # fmt: skip


def _pod_ip(pod: str) -> str:
    status = json.loads((STATE / "status.json").read_text())
    (ip,) = [p["ip"] for p in status["pods"] if p["name"] == pod]
    return str(ip)


def _in_node(fn: Any) -> Any:
    from lacewing.local import netns

    return netns.in_netns(f"lwl-{NAME}-node", fn)


def _request(context: ssl.SSLContext | None) -> bytes:
    ip = _pod_ip("srv-0")
    raw = _in_node(lambda: socket.create_connection((ip, 4190), timeout=5))
    sock: socket.socket = context.wrap_socket(raw) if context is not None else raw
    with sock:
        sock.sendall(b"POST /tap HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except (OSError, ssl.SSLError) as exc:
            return answer + f" <{type(exc).__name__}>".encode()
        return answer


def test_a_client_with_another_identity_is_refused(cluster: None) -> None:
    from lacewing.viz import tapclient

    # a certificate from the same issuer, for a workload identity the tap policy does not allow
    context = tapclient.leaf_context(STATE, f"cli.{NS}.{SUFFIX}")
    answer = _request(context)
    assert answer.startswith(b"HTTP/1.1 403 "), answer
    assert f"client identity cli.{NS}.{SUFFIX} is not allowed by the tap policy".encode() in answer


def test_plaintext_is_refused(cluster: None) -> None:
    answer = _request(None)
    assert b"HTTP/1.1 200" not in answer and b"direction" not in answer, answer


def test_the_allowed_client_is_served(cluster: None) -> None:
    from lacewing.viz import tapclient

    answer_head = b""
    context = tapclient.leaf_context(
        STATE, tapclient.TAP_CLIENT_IDENTITY.format(trust_domain="cluster.local")
    )
    ip = _pod_ip("srv-0")
    raw = _in_node(lambda: socket.create_connection((ip, 4190), timeout=5))
    with context.wrap_socket(raw) as sock:
        sock.sendall(b"POST /tap HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        answer_head = sock.recv(4096)
    assert answer_head.startswith(b"HTTP/1.1 200 OK"), answer_head
