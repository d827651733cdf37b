"""A control-plane component's admin port (`$LACEWING_CONTROLLER_ADMIN_ADDR`): /metrics counts
the requests the component really answered, /ready answers, and it goes with the component."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.unit.proxy.identity.pki import Pki

from lacewing.controller.admin import ADMIN_ADDR_ENV
from lacewing.core.identity import Identity, mint_local_token
from lacewing.proxy.identity.credentials import make_csr, new_private_key
from lacewing.viz.promtext import parse, total

NAME = "lacewing-identity.lacewing.serviceaccount.identity.lacewing.cluster.local"
KEY = b"a-local-runtime-key-of-32-bytes!"
SERVER = {"server": "identity service"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_identity_admin_port_counts_requests(tmp_path: Path) -> None:
    pki = Pki.make()
    issuer = pki.write_issuer_dir(tmp_path / "issuer")
    anchors = tmp_path / "ca.crt"
    anchors.write_text(pki.anchors_pem)
    (tmp_path / "token.key").write_bytes(KEY)
    admin = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lacewing.cli.main", "controller", "identity",
         "--issuer-dir", str(issuer), "--trust-anchors-file", str(anchors),
         "--validator", "local", "--local-token-key-file", str(tmp_path / "token.key"),
         "--listen-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": "src", ADMIN_ADDR_ENV: f"127.0.0.1:{admin}"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on 127.0.0.1:" in line, proc.stderr.read() if proc.stderr else ""
        port = int(line.rsplit(":", 1)[1])
        assert _get(f"http://127.0.0.1:{admin}/ready")[0] == 200
        before = parse(_get(f"http://127.0.0.1:{admin}/metrics")[1])
        assert total(before, "lacewing_controller_connections_total", **SERVER) == 0
        web = Identity("shop", "web")
        body = {
            "identity": web.name,
            "token": mint_local_token(KEY, "shop", "web"),
            "csr": make_csr(new_private_key(), web),
        }
        for _ in range(3):
            curl = subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(anchors),
                 "--resolve", f"{NAME}:{port}:127.0.0.1", f"https://{NAME}:{port}/v1/certify",
                 "-d", json.dumps(body)],
                capture_output=True, text=True, timeout=20,
            )  # fmt: skip
            assert curl.stdout == "200", curl.stderr
        after = parse(_get(f"http://127.0.0.1:{admin}/metrics")[1])
        assert total(after, "lacewing_controller_connections_total", **SERVER) == 3
        assert total(after, "lacewing_controller_open_connections", **SERVER) == 0
        name = "lacewing_controller_connection_duration_seconds_count"
        assert total(after, name, **SERVER) == 3
        assert total(after, "process_resident_memory_bytes") > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0
    try:
        _get(f"http://127.0.0.1:{admin}/ready")
    except OSError:
        pass
    else:
        raise AssertionError("the admin port outlived the controller")
