"""The adapter and the install flow against the Kubernetes API emulator, over real HTTPS.

`install --crds` and `install` output are applied through `Cluster.apply` (server-side
apply, as `kubectl apply --server-side` would) and read back; `upgrade` then reads the stored
values and issuer from that cluster; `uninstall` lists what is there to delete.
"""

from __future__ import annotations

import io
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from lacewing.cli.commands.install import (
    InstallOptions,
    run_install,
    run_uninstall,
    run_upgrade,
)
from lacewing.cli.commands.version import VersionOptions
from lacewing.cli.commands.version import run as run_version
from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import AlreadyInstalled, ClusterError, ClusterUnreachable
from lacewing.install.crds import crd_names
from lacewing.k8s.cluster import Cluster, ClusterApiError, read_control_plane_version


@pytest.fixture
def cluster(kube_api: Any) -> Any:
    with Cluster.connect(str(kube_api.kubeconfig)) as c:
        yield c


def _g(kube_api: Any) -> GlobalOptions:
    return GlobalOptions(kubeconfig=str(kube_api.kubeconfig))


def _render(run: Any, options: InstallOptions, g: GlobalOptions) -> list[dict[str, Any]]:
    buffer = io.StringIO()
    assert run(options, g, Output(out=buffer, err=io.StringIO())) == 0
    return [d for d in yaml.safe_load_all(buffer.getvalue()) if d]


def _apply_all(cluster: Cluster, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        cluster.apply(doc)


def test_adapter_basics(cluster: Cluster, kube_api: Any) -> None:
    kube_api.set_version(1, 29)
    assert cluster.server_version() == (1, 29)
    now = cluster.server_now()
    assert now is not None and abs(now - datetime.now(UTC)) < timedelta(minutes=1)
    assert cluster.get("v1", "Namespace", "kube-system") is not None
    assert cluster.get("v1", "Namespace", "nope") is None
    names = [n["metadata"]["name"] for n in cluster.list("v1", "Namespace")]
    assert "default" in names
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", "labels": {"app": "x"}},
        "data": {"k": "v"},
    }
    cluster.create(cm, dry_run=True)
    assert cluster.get("v1", "ConfigMap", "c", "default") is None
    cluster.create(cm)
    with pytest.raises(ClusterApiError) as caught:
        cluster.create(cm)
    assert caught.value.code == 409 and "already exists" in str(caught.value)
    assert [
        c["metadata"]["name"]
        for c in cluster.list("v1", "ConfigMap", "default", label_selector="app=x")
    ] == ["c"]
    cluster.delete("v1", "ConfigMap", "c", "default")
    assert cluster.get("v1", "ConfigMap", "c", "default") is None


def test_can_i_follows_the_server(cluster: Cluster, kube_api: Any) -> None:
    assert cluster.can_i("create", "deployments", "apps", "lacewing")
    kube_api.deny("get", "secrets")
    assert not cluster.can_i("get", "secrets", namespace="lacewing")


def test_wrong_token_is_a_clear_error(kube_api: Any, tmp_path: Any) -> None:
    config = yaml.safe_load(kube_api.kubeconfig.read_text())
    config["users"][0]["user"]["token"] = "wrong"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    with Cluster.connect(str(path)) as c, pytest.raises(ClusterApiError) as caught:
        c.get("v1", "Namespace", "default")
    assert caught.value.code == 401 and caught.value.hint


def test_version_command_reads_the_installed_version(kube_api: Any, cluster: Cluster) -> None:
    out = io.StringIO()
    run_version(VersionOptions(), _g(kube_api), Output(out=out))
    assert out.getvalue().splitlines()[1] == "Server version: unavailable"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lacewing"}})
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "lacewing-config", "namespace": "lacewing"},
            "data": {"version": "9.9.9"},
        }
    )
    out = io.StringIO()
    run_version(VersionOptions(), _g(kube_api), Output(out=out))
    assert out.getvalue().splitlines()[1] == "Server version: 9.9.9"
    out = io.StringIO()
    run_version(VersionOptions(short=True), _g(kube_api), Output(out=out))
    assert out.getvalue().splitlines()[1] == "9.9.9"
    out = io.StringIO()
    run_version(VersionOptions(client_only=True), _g(kube_api), Output(out=out))
    assert len(out.getvalue().splitlines()) == 1


def test_install_flow(kube_api: Any, cluster: Cluster) -> None:
    g = _g(kube_api)
    with pytest.raises(ClusterError, match="CRDs are not installed") as caught:
        _render(run_install, InstallOptions(), g)
    assert "install --crds" in (caught.value.hint or "")

    crds = _render(run_install, InstallOptions(crds=True), g)
    _apply_all(cluster, crds)
    for name in crd_names():
        assert cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)

    docs = _render(run_install, InstallOptions(sets=("proxy.logLevel=debug",)), g)
    for doc in docs:  # the API server accepts every object (dry run), then for real
        cluster.apply(doc, dry_run=doc["kind"] != "Namespace")
    _apply_all(cluster, docs)
    assert read_control_plane_version(cluster, "lacewing") is not None
    deployments = cluster.list("apps/v1", "Deployment", "lacewing")
    assert sorted(d["metadata"]["name"] for d in deployments) == [
        "lacewing-destination",
        "lacewing-identity",
        "lacewing-policy",
        "lacewing-proxy-injector",
    ]
    # a custom resource of a freshly installed CRD is served (discovery after the CRD exists)
    server = {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": "Server",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": 8080},
    }
    cluster.apply(server)
    assert cluster.get("policy.lacewing.io/v1beta1", "Server", "web", "default")

    with pytest.raises(AlreadyInstalled) as already:
        _render(run_install, InstallOptions(), g)
    assert "upgrade" in (already.value.hint or "")

    # upgrade: stored values come back (logLevel), the issuer and anchors are kept
    issuer_before = cluster.get("v1", "Secret", "lacewing-identity-issuer", "lacewing")
    upgraded = _render(run_upgrade, InstallOptions(ha=True), g)
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in upgraded}
    issuer_after = by_name[("Secret", "lacewing-identity-issuer")]
    assert issuer_before is not None and issuer_after["data"] == issuer_before["data"]
    identity = by_name[("Deployment", "lacewing-identity")]
    assert identity["spec"]["replicas"] == 3
    proxy = identity["spec"]["template"]["spec"]["containers"][1]
    assert {"name": "LACEWING_PROXY_LOG_LEVEL", "value": "debug"} in proxy["env"]
    _apply_all(cluster, upgraded)

    # uninstall lists the namespace, the cluster-wide objects and the CRDs that exist
    gone = _render(run_uninstall, InstallOptions(), g)
    kinds = {d["kind"] for d in gone}
    assert {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
    } <= kinds
    for doc in gone:
        cluster.delete(doc["apiVersion"], doc["kind"], doc["metadata"]["name"])
    assert _render(run_uninstall, InstallOptions(), g) == []


def test_upgrade_without_install(kube_api: Any) -> None:
    with pytest.raises(ClusterError, match="not installed"):
        _render(run_upgrade, InstallOptions(), _g(kube_api))


def test_install_without_cluster_hints_at_ignore_cluster(tmp_path: Any) -> None:
    g = GlobalOptions(kubeconfig=str(tmp_path / "missing"))
    with pytest.raises(ClusterUnreachable) as caught:
        _render(run_install, InstallOptions(), g)
    assert "--ignore-cluster" in (caught.value.hint or "")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
def test_the_users_path_with_real_kubectl(kube_api: Any, cluster: Cluster) -> None:
    g = _g(kube_api)

    def text(run: Any, options: InstallOptions) -> str:
        buffer = io.StringIO()
        run(options, g, Output(out=buffer, err=io.StringIO()))
        return buffer.getvalue()

    crds = text(run_install, InstallOptions(crds=True))
    applied = kube_api.kubectl("apply", "-f", "-", input=crds)
    assert applied.returncode == 0, applied.stderr
    applied = kube_api.kubectl("apply", "-f", "-", input=text(run_install, InstallOptions()))
    assert applied.returncode == 0, applied.stderr
    assert "deployment.apps/lacewing-identity created" in applied.stdout
    secret = cluster.get("v1", "Secret", "lacewing-identity-issuer", "lacewing")
    assert secret is not None and secret["type"] == "kubernetes.io/tls"
    deleted = kube_api.kubectl("delete", "-f", "-", input=text(run_uninstall, InstallOptions()))
    assert deleted.returncode == 0, deleted.stderr
    assert 'namespace "lacewing" deleted' in deleted.stdout
