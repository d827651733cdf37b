"""The real kubectl against the emulator: apply (client- and server-side), get, delete."""

from __future__ import annotations

import json
import shutil

import pytest
from tests.support.kubeapi import KubeAPI

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
"""

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servers.policy.lacewing.io
spec:
  group: policy.lacewing.io
  scope: Namespaced
  names: {plural: servers, singular: server, kind: Server, shortNames: [srv]}
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""

SERVER = """\
apiVersion: policy.lacewing.io/v1beta1
kind: Server
metadata:
  name: web-http
  namespace: default
spec:
  port: 80
"""


def _ok(kube_api: KubeAPI, *args: str, input: str | None = None) -> str:
    result = kube_api.kubectl(*args, input=input)
    assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def test_client_side_apply_get_and_delete(kube_api: KubeAPI) -> None:
    out = _ok(kube_api, "apply", "-f", "-", input=MANIFEST)
    assert out.splitlines() == [
        "namespace/shop created",
        "deployment.apps/web created",
        "service/web created",
    ]
    again = _ok(kube_api, "apply", "-f", "-", input=MANIFEST.replace("replicas: 2", "replicas: 3"))
    assert "deployment.apps/web configured" in again and "service/web unchanged" in again
    dep = kube_api.get("apps/v1", "Deployment", "web", "shop")
    assert dep is not None and dep["spec"]["replicas"] == 3
    assert "kubectl.kubernetes.io/last-applied-configuration" in dep["metadata"]["annotations"]

    table = _ok(kube_api, "get", "deploy,svc", "-n", "shop")
    assert "deployment.apps/web" in table and "service/web" in table and "80/TCP" in table
    names = _ok(kube_api, "get", "deploy", "-A", "-l", "app=web", "-o", "name")
    assert names.split() == ["deployment.apps/web"]
    as_json = json.loads(_ok(kube_api, "get", "svc", "web", "-n", "shop", "-o", "json"))
    assert as_json["spec"]["clusterIP"].startswith("10.96.")

    deleted = _ok(kube_api, "delete", "-f", "-", input=MANIFEST)
    assert 'namespace "shop" deleted' in deleted and 'deployment.apps "web" deleted' in deleted
    assert kube_api.get("v1", "Namespace", "shop") is None


def test_server_side_apply_and_conflicts(kube_api: KubeAPI) -> None:
    out = _ok(kube_api, "apply", "--server-side", "-f", "-", input=MANIFEST)
    assert "deployment.apps/web serverside-applied" in out
    kube_api.patch("apps/v1", "Deployment", "web", {"spec": {"replicas": 5}}, "shop")
    conflict = kube_api.kubectl("apply", "--server-side", "-f", "-", input=MANIFEST)
    assert (
        conflict.returncode != 0
        and "conflict" in conflict.stderr
        and ".spec.replicas" in conflict.stderr
    )
    _ok(kube_api, "apply", "--server-side", "--force-conflicts", "-f", "-", input=MANIFEST)
    dep = kube_api.get("apps/v1", "Deployment", "web", "shop")
    assert dep is not None and dep["spec"]["replicas"] == 2


def test_crd_then_custom_resource(kube_api: KubeAPI) -> None:
    assert (
        "customresourcedefinition.apiextensions.k8s.io/servers.policy.lacewing.io created"
        in _ok(kube_api, "apply", "-f", "-", input=CRD)
    )
    assert "server.policy.lacewing.io/web-http created" in _ok(
        kube_api, "apply", "-f", "-", input=SERVER
    )
    assert "configured" in _ok(
        kube_api, "apply", "-f", "-", input=SERVER.replace("port: 80", "port: 8080")
    )
    obj = kube_api.get("policy.lacewing.io/v1beta1", "Server", "web-http", "default")
    assert obj is not None and obj["spec"] == {"port": 8080}
    assert "web-http" in _ok(kube_api, "get", "srv")


def test_dry_run_server_and_errors(kube_api: KubeAPI) -> None:
    out = _ok(kube_api, "apply", "--dry-run=server", "-f", "-", input=MANIFEST.split("---")[0])
    assert "namespace/shop created (server dry run)" in out
    assert kube_api.get("v1", "Namespace", "shop") is None
    missing = kube_api.kubectl("get", "deploy", "ghost", "-n", "default")
    assert missing.returncode == 1
    assert 'deployments.apps "ghost" not found' in missing.stderr


def test_everyday_commands_with_the_kubelet(kube_api: KubeAPI) -> None:
    _ok(kube_api, "apply", "-f", "-", input=MANIFEST)
    kube_api.kubelet.sync()
    _ok(kube_api, "annotate", "ns", "shop", "lacewing.io/inject=enabled")
    ns = kube_api.get("v1", "Namespace", "shop")
    assert ns is not None and ns["metadata"]["annotations"]["lacewing.io/inject"] == "enabled"
    before = {p["metadata"]["name"] for p in kube_api.list("v1", "Pod", "shop")}
    _ok(kube_api, "rollout", "restart", "-n", "shop", "deploy/web")
    kube_api.kubelet.sync()
    after = {p["metadata"]["name"] for p in kube_api.list("v1", "Pod", "shop")}
    assert len(after) == 2 and not before & after
    kube_api.kubelet.mark_ready(namespace="shop")
    assert "successfully rolled out" in _ok(
        kube_api, "rollout", "status", "-n", "shop", "deploy/web", "--timeout=5s"
    )
    waited = _ok(
        kube_api,
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=web",
        "-n",
        "shop",
        "--timeout=5s",
    )
    assert waited.count("condition met") == 2
    assert "scaled" in _ok(kube_api, "scale", "-n", "shop", "deploy/web", "--replicas=3")
    dep = kube_api.get("apps/v1", "Deployment", "web", "shop")
    assert dep is not None and dep["spec"]["replicas"] == 3
    assert _ok(kube_api, "auth", "can-i", "create", "pods").strip() == "yes"
    kube_api.deny("create", "pods")
    denied = kube_api.kubectl("auth", "can-i", "create", "pods")
    assert denied.stdout.startswith("no")
