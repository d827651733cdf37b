"""`lacewing controller policy --source local` as a process: files in, stream out, clean exits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.policy import PolicyStream, summary

RUNNER = "from lacewing.cli.main import main; main()"
REGISTRY = {
    "cluster": "t",
    "revision": 1,
    "services": [
        {
            "name": "web",
            "namespace": "shop",
            "clusterIP": "10.43.0.10",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "opaque": False}],
            "selector": {"app": "web"},
        }
    ],
    "pods": [
        {
            "name": "web-0",
            "namespace": "shop",
            "ip": "10.42.0.10",
            "labels": {"app": "web"},
            "serviceAccount": "web",
            "ready": True,
            "meshed": True,
            "workload": {"kind": "Deployment", "name": "web"},
        }
    ],
}
SERVER = """
apiVersion: policy.lacewing.io/v1beta1
kind: Server
metadata: {name: web-http, namespace: shop}
spec: {podSelector: {matchLabels: {app: web}}, port: http}
"""


def write(path: Path, text: str, stamp: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.utime(tmp, ns=(stamp * 10**9, stamp * 10**9))
    tmp.rename(path)


async def test_local_policy_file_changes_reach_the_stream(tmp_path: Path) -> None:
    registry, policy = tmp_path / "registry.json", tmp_path / "policy.yaml"
    write(registry, json.dumps(REGISTRY), 1)
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, "controller", "policy", "--source", "local",
         "--registry-file", str(registry), "--policy-file", str(policy),
         "--default-policy", "cluster-unauthenticated", "--listen-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert "policy (local source) listening on http://127.0.0.1:" in banner
        port = int(banner.rsplit(":", 1)[1])
        stream = await PolicyStream.open(port, "namespace=shop&pod=web-0&port=8080")
        first = await stream.next(timeout=5.0)
        assert summary(first) == ("default", "cluster-unauthenticated", ["cluster-unauthenticated"])

        loop = asyncio.get_running_loop()
        started = loop.time()
        write(policy, SERVER, 2)
        assert summary(await stream.next(timeout=3.0)) == ("server", "web-http", [])
        assert loop.time() - started < 1.0
        await stream.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert code == 0


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--default-policy", "open"], "Error: --default-policy: 'open' is not a default policy"),
        (["--cluster-networks", "10.0.0.0/8,nope"],
         "Error: --cluster-networks[1].cidr: 'nope' is not an IP network in CIDR notation"),
        (["--issuer-dir", "/nonexistent"],
         "Error: --trust-anchors-file goes with --identity-addr or --issuer-dir"),
        (["--identity-addr", "x:1", "--trust-anchors-file", "/nonexistent"],
         "Error: --identity-addr and --identity-token-file go together"),
        (["--admission-addr", "127.0.0.1:0", "--tls-dir", "/nonexistent"],
         "Error: cannot read the webhook certificate in /nonexistent: No such file or directory"),
        (["--listen-addr", "nowhere"], "Error: --listen-addr: 'nowhere' is not HOST:PORT"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line_before_listening(args: list[str], line: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, "controller", "policy", "--source", "local", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == line
    assert "Traceback" not in done.stderr and done.stdout == ""
