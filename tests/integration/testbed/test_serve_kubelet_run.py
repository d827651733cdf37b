"""`python -m tests.support.kubeapi serve --kubelet run`: the by-hand test bed runs pods."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH"),
]
ROOT = Path(__file__).resolve().parents[3]
POD = """
apiVersion: v1
kind: Pod
metadata: {name: hello, namespace: default}
spec:
  containers:
  - name: echo
    image: testbed.local/echo:1
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: http}}
"""


def test_serve_runs_pods_and_cleans_up_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.kubeapi",
            "serve",
            "--kubeconfig",
            str(kubeconfig),
            "--kubelet",
            "run",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    prefix = ""
    try:
        assert serve.stdout is not None
        for _ in range(2):
            line = serve.stdout.readline()
            if m := re.search(r"network namespaces (lwk-[0-9a-f]+-)\*", line):
                prefix = m.group(1)
        assert prefix, "the kubelet did not say which namespaces it uses"
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}

        def kubectl(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["kubectl", *args],
                input=input,
                capture_output=True,
                text=True,
                env=env,
                timeout=30,
                check=False,
            )

        assert kubectl("apply", "-f", "-", input=POD).returncode == 0
        deadline = time.monotonic() + 20
        while True:
            got = json.loads(kubectl("get", "pod", "hello", "-o", "json").stdout)
            conditions = {c["type"]: c["status"] for c in got["status"].get("conditions", [])}
            if conditions.get("Ready") == "True":
                break
            assert time.monotonic() < deadline, got["status"]
            time.sleep(0.3)
        assert [n for n in os.listdir("/run/netns") if n.startswith(prefix)]
    finally:
        serve.terminate()
        serve.wait(30)
    assert serve.returncode == 0
    assert not [n for n in os.listdir("/run/netns") if n.startswith(prefix)]
    assert not [n for n in os.listdir("/etc/netns") if n.startswith(prefix)]
