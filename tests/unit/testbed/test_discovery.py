"""Discovery, version and the `serve` entry point."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from tests.support.kubeapi import KubeAPI
from tests.unit.testbed.test_lightkube_crud import CRD


def _get(kube_api: KubeAPI, path: str) -> dict[str, Any]:
    ctx = ssl.create_default_context(cadata=kube_api.ca_pem.decode())
    req = urllib.request.Request(
        kube_api.url + path, headers={"Authorization": f"Bearer {kube_api.token}"}
    )
    with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


def test_version_is_settable(kube_api: KubeAPI) -> None:
    assert (_get(kube_api, "/version")["major"], _get(kube_api, "/version")["minor"]) == ("1", "31")
    kube_api.set_version(1, 27)
    assert _get(kube_api, "/version")["gitVersion"] == "v1.27.0"


def test_builtin_groups_are_discoverable(kube_api: KubeAPI) -> None:
    core = {r["name"] for r in _get(kube_api, "/api/v1")["resources"]}
    assert {
        "pods",
        "pods/status",
        "services",
        "namespaces",
        "secrets",
        "events",
        "endpoints",
    } <= core
    groups = {g["name"] for g in _get(kube_api, "/apis")["groups"]}
    assert {
        "apps",
        "batch",
        "discovery.k8s.io",
        "rbac.authorization.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "policy",
        "coordination.k8s.io",
        "authorization.k8s.io",
        "authentication.k8s.io",
    } <= groups
    apps_v1 = _get(kube_api, "/apis/apps/v1")["resources"]
    apps = {r["kind"] for r in apps_v1 if "/" not in r["name"]}
    assert {"deployments/scale", "deployments/status"} <= {r["name"] for r in apps_v1}
    assert apps == {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"}
    assert _get(kube_api, "/apis/authentication.k8s.io/v1")["resources"][0]["verbs"] == ["create"]


def test_crd_kinds_appear_in_discovery(kube_api: KubeAPI) -> None:
    assert "policy.lacewing.io" not in {g["name"] for g in _get(kube_api, "/apis")["groups"]}
    kube_api.create(CRD)
    assert "policy.lacewing.io" in {g["name"] for g in _get(kube_api, "/apis")["groups"]}
    resources = _get(kube_api, "/apis/policy.lacewing.io/v1beta1")["resources"]
    assert {(r["name"], r["kind"]) for r in resources} == {
        ("servers", "Server"),
        ("servers/status", "Server"),
    }
    assert resources[0]["shortNames"] == ["srv"]


def test_serve_runs_until_interrupted(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.kubeapi", "serve", "--kubeconfig", str(kubeconfig)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "serving on https://127.0.0.1:" in first
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["current-context"] == "testbed"
        server = config["clusters"][0]["cluster"]["server"]
        assert server in first
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _raw(
    kube_api: KubeAPI, method: str, path: str, body: bytes | None, token: str | None
) -> tuple[int, dict[str, Any]]:
    ctx = ssl.create_default_context(cadata=kube_api.ca_pem.decode())
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(kube_api.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_anonymous_may_read_version_only(kube_api: KubeAPI) -> None:
    assert _raw(kube_api, "GET", "/version", None, None)[0] == 200
    code, status = _raw(kube_api, "GET", "/api/v1/namespaces", None, None)
    assert (code, status["reason"]) == (401, "Unauthorized")
    assert _raw(kube_api, "GET", "/version", None, "wrong")[0] == 401


def test_malformed_bodies_are_400(kube_api: KubeAPI) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    code, status = _raw(kube_api, "POST", path, b"[1, 2]", kube_api.token)
    assert (code, status["kind"], status["reason"]) == (400, "Status", "BadRequest")
    code, status = _raw(kube_api, "POST", path, b"{not json", kube_api.token)
    assert code == 400 and "not valid" in status["message"]
    code, status = _raw(
        kube_api, "GET", "/apis/nothing.example.com/v1/things", None, kube_api.token
    )
    assert (code, status["reason"]) == (404, "NotFound")
