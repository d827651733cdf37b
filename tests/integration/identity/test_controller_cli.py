"""`lacewing controller identity` as a real process, called with curl as the docs show."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.unit.proxy.identity.pki import Pki

from lacewing.cli.commands.controller import parse_duration
from lacewing.core.identity import Identity, mint_local_token
from lacewing.errors import UsageError
from lacewing.proxy.identity.keygen import make_csr, new_private_key

NAME = "lacewing-identity.lacewing.serviceaccount.identity.lacewing.cluster.local"
KEY = b"a-local-runtime-key-of-32-bytes!"


def _lacewing(*args: str) -> list[str]:
    return [sys.executable, "-c", "from lacewing.cli.main import main; main()", *args]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    pki = Pki.make()
    issuer = pki.write_issuer_dir(tmp_path / "issuer")
    anchors = tmp_path / "ca.crt"
    anchors.write_text(pki.anchors_pem)
    key = tmp_path / "token.key"
    key.write_bytes(KEY)
    return {"issuer": issuer, "anchors": anchors, "key": key}


def _start(files: dict[str, Path], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _lacewing(
            "controller", "identity",
            "--issuer-dir", str(files["issuer"]),
            "--trust-anchors-file", str(files["anchors"]),
            "--validator", "local",
            "--local-token-key-file", str(files["key"]),
            "--listen-addr", "127.0.0.1:0",
            *extra,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": "src"},
    )  # fmt: skip


def test_curl_gets_a_certificate_from_the_running_controller(files: dict[str, Path]) -> None:
    proc = _start(files, "--identity-issuance-lifetime", "1h")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on 127.0.0.1:" in line, proc.stderr.read() if proc.stderr else ""
        port = int(line.rsplit(":", 1)[1])
        web = Identity("shop", "web")
        body = {
            "identity": web.name,
            "token": mint_local_token(KEY, "shop", "web"),
            "csr": make_csr(new_private_key(), web),
        }
        curl = [
            "curl", "-sS", "--cacert", str(files["anchors"]),
            "--resolve", f"{NAME}:{port}:127.0.0.1", f"https://{NAME}:{port}/v1/certify",
            "-w", "\\n%{http_code}", "-d",
        ]  # fmt: skip
        ok = subprocess.run([*curl, json.dumps(body)], capture_output=True, text=True, timeout=20)
        payload, status = ok.stdout.rsplit("\n", 1)
        assert status == "200", ok.stdout + ok.stderr
        answer = json.loads(payload)
        assert answer["leaf"].startswith("-----BEGIN CERTIFICATE-----")
        assert answer["valid_until"].endswith("Z")

        bad = {**body, "token": mint_local_token(b"not-the-runtime-key!", "shop", "web")}
        refused = subprocess.run(
            [*curl, json.dumps(bad)], capture_output=True, text=True, timeout=20
        )
        payload, status = refused.stdout.rsplit("\n", 1)
        assert status == "401"
        assert "signature" in json.loads(payload)["error"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--identity-issuance-lifetime", "forever"], "is not a duration"),
        (["--listen-addr", "nowhere"], "is not HOST:PORT"),
        (["--trust-domain", "Bad_Domain"], "trust domain"),
        (["--local-token-key-file", "/nonexistent/key"], "cannot read the local token key"),
    ],
)
def test_mistakes_are_one_line_not_a_traceback(
    files: dict[str, Path], extra: list[str], message: str
) -> None:
    proc = _start(files, *extra)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert message in err
    assert "Traceback" not in err


def test_a_missing_issuer_is_refused_at_start(files: dict[str, Path]) -> None:
    (files["issuer"] / "tls.key").unlink()
    proc = _start(files)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.startswith("Error: cannot read the issuer files") and "Traceback" not in err


def test_durations_are_parsed_as_linkerd_flags_take_them() -> None:
    assert parse_duration("24h", "--x").total_seconds() == 86400
    assert parse_duration("1h30m", "--x").total_seconds() == 5400
    assert parse_duration("500ms", "--x").total_seconds() == 0.5
    for bad in ("", "10", "h", "5 parsecs", "1h-2m"):
        with pytest.raises(UsageError):
            parse_duration(bad, "--x")


def test_the_kubernetes_validator_end_to_end(files: dict[str, Path], kube_api: Any) -> None:
    """The controller process asks the API test bed (real HTTPS) to review the token."""
    kube_api.register_token(
        "projected-token-web", "system:serviceaccount:shop:web", audiences=("identity.lacewing.io",)
    )
    proc = subprocess.Popen(
        _lacewing(
            "--kubeconfig", str(kube_api.kubeconfig),
            "controller", "identity",
            "--issuer-dir", str(files["issuer"]),
            "--trust-anchors-file", str(files["anchors"]),
            "--listen-addr", "127.0.0.1:0",
        ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": "src"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, proc.stderr.read() if proc.stderr else ""
        port = int(line.rsplit(":", 1)[1])
        web = Identity("shop", "web")
        curl = [
            "curl", "-sS", "--cacert", str(files["anchors"]),
            "--resolve", f"{NAME}:{port}:127.0.0.1", f"https://{NAME}:{port}/v1/certify",
            "-w", "\\n%{http_code}", "-d",
        ]  # fmt: skip
        for token, expected in (("projected-token-web", "200"), ("someone-else", "401")):
            body = {"identity": web.name, "token": token, "csr": make_csr(new_private_key(), web)}
            done = subprocess.run(
                [*curl, json.dumps(body)], capture_output=True, text=True, timeout=20
            )
            assert done.stdout.rsplit("\n", 1)[1] == expected, done.stdout + done.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_the_controller_group_lists_its_components() -> None:
    done = subprocess.run(
        _lacewing("controller", "--help"),
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": "src"},
    )
    assert done.returncode == 0
    assert "identity" in done.stdout.split("Commands:", 1)[1]
