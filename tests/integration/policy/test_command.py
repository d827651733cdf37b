"""`lacewing controller policy` as a process against the API test bed, with the webhook.

The control plane is what `lacewing install` renders, applied to the test bed (CRDs; install
does not render the policy controller yet, so the test makes the policy-validator's serving
certificate itself, as install's credentials would). The command runs with the flags the
install Deployment passed before it was dropped (plus loopback ports); the test then talks to
it as the API server and a proxy would: an AdmissionReview over HTTPS, verified against that
CA for `lacewing-policy-validator.lacewing.svc`, and a stream read line by line.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.support.kubeapi import KubeAPI
from tests.support.policy import PolicyStream, summary

from lacewing.install.credentials import generate
from lacewing.install.render import render_control_plane, render_crds
from lacewing.install.values import build_values
from lacewing.k8s.cluster import Cluster
from lacewing.tls import pki

RUNNER = "from lacewing.cli.main import main; main()"
SERVICE_HOST = "lacewing-policy-validator.lacewing.svc"


def bad_server_review() -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3c1f",
            "kind": {"group": "policy.lacewing.io", "version": "v1beta1", "kind": "Server"},
            "resource": {
                "group": "policy.lacewing.io",
                "version": "v1beta1",
                "resource": "servers",
            },
            "operation": "CREATE",
            "namespace": "shop",
            "object": {
                "apiVersion": "policy.lacewing.io/v1beta1",
                "kind": "Server",
                "metadata": {"name": "web-http", "namespace": "shop"},
                "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": 70000},
            },
        },
    }


async def post_review(port: int, ca_pem: bytes, review: dict[str, Any]) -> dict[str, Any]:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=SERVICE_HOST
    )
    body = json.dumps(review).encode()
    writer.write(
        b"POST /?timeout=10s HTTP/1.1\r\nHost: " + SERVICE_HOST.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return dict(json.loads(payload))


@pytest.fixture
def installed(kube_api: KubeAPI, tmp_path: Path) -> tuple[Path, bytes]:
    """Apply what install renders, and the policy-validator's serving certificate (install
    does not render the policy controller yet): the webhook's tls dir and its CA."""
    values = build_values()
    creds = generate(values.namespace, values.identity.trust_domain)
    with Cluster.connect(str(kube_api.kubeconfig)) as cluster:
        for doc in render_crds(values) + render_control_plane(values, creds):
            cluster.apply(doc)
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    ca = pki.generate_webhook_ca(values.namespace)
    serving = pki.generate_serving_certificate(ca, "lacewing-policy-validator", values.namespace)
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    (tls_dir / "tls.crt").write_text(serving.cert_pem)
    (tls_dir / "tls.key").write_text(serving.key_pem)
    return tls_dir, ca.cert_pem.encode()


async def test_the_command_streams_policy_and_its_webhook_rejects_a_bad_server(
    kube_api: KubeAPI, installed: tuple[Path, bytes]
) -> None:
    tls_dir, ca_pem = installed
    kube_api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1",
                                     "ports": [{"name": "http", "containerPort": 8080}]}]},
        }
    )  # fmt: skip
    proc = subprocess.Popen(
        [
            sys.executable, "-c", RUNNER, "controller", "policy",
            "--kubeconfig", str(kube_api.kubeconfig),
            "--listen-addr", "127.0.0.1:0",
            "--admission-addr", "127.0.0.1:0",
            "--tls-dir", str(tls_dir),
            "--default-policy", "cluster-authenticated",
            "--cluster-networks", "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        found = re.search(
            r"on http://127\.0\.0\.1:(\d+), validator on https://127\.0\.0\.1:(\d+)", banner
        )
        assert found, banner
        api_port, hook_port = int(found[1]), int(found[2])

        answer = await post_review(hook_port, ca_pem, bad_server_review())
        assert answer["response"] == {
            "uid": "3c1f",
            "allowed": False,
            "status": {
                "code": 400,
                "reason": "Invalid",
                "message": "Server shop/web-http: spec.port: 70000 is not a port number "
                "(1-65535) or a port name",
            },
        }
        good = bad_server_review()
        good["request"]["object"]["spec"]["port"] = "http"
        assert (await post_review(hook_port, ca_pem, good))["response"]["allowed"] is True

        stream = await PolicyStream.open(api_port, "namespace=shop&pod=web-0&port=8080")
        first = await stream.next(timeout=10.0)
        assert summary(first) == ("default", "cluster-authenticated", ["cluster-authenticated"])
        kube_api.create(good["request"]["object"])
        assert summary(await stream.next(timeout=3.0)) == ("server", "web-http", [])
        await stream.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    assert "Traceback" not in stderr
