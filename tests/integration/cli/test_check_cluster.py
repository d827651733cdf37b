"""`lacewing check --pre` and `lacewing check` against the Kubernetes API emulator, over HTTPS.

The control plane is installed as a user would: the `install --crds` and `install` manifests
(role B's renderer) applied through `Cluster.apply`. The emulator's kubelet then creates the
control plane's pods and marks them Ready when a test says so.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.cli.conftest import CliResult
from tests.integration.cli.injector import ThreadedInjector
from tests.integration.cli.policy_controller import ThreadedPolicy
from tests.support.kubeapi import KubeAPI
from tests.unit.healthcheck.version_server import serve_version_document

from lacewing import __version__
from lacewing.cli.commands.check import CheckCommandOptions, run
from lacewing.cli.context import GlobalOptions, Output
from lacewing.k8s.cluster import Cluster
from lacewing.tls import pki

Lacewing = Callable[..., CliResult]
X = "\N{MULTIPLICATION SIGN}"


@pytest.fixture
def latest_is(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Serve a version document on loopback: `latest_is("9.9.9")`."""
    servers: list[Any] = []

    def serve(version: str) -> None:
        server = serve_version_document(json.dumps({"stable": version}).encode())
        monkeypatch.setenv("LACEWING_VERSION_CHECK_URL", server.__enter__())
        servers.append(server)

    yield serve
    for server in servers:
        server.__exit__(None, None, None)


def check(lacewing: Lacewing, api: KubeAPI, *args: str) -> CliResult:
    return lacewing("--kubeconfig", str(api.kubeconfig), "check", *args)


def failures(out: str) -> list[str]:
    return [line[2:] for line in out.splitlines() if line.startswith((X, "‼"))]


# -- check --pre ---------------------------------------------------------------------------------


def test_pre_passes_on_an_empty_cluster(
    kube_api: KubeAPI, lacewing: Lacewing, latest_is: Callable[[str], None], golden: Any
) -> None:
    latest_is(__version__)
    result = check(lacewing, kube_api, "--pre")
    assert result.code == 0, result.out
    golden("check/pre_pass.txt", result.out)
    assert kube_api.get("v1", "Namespace", "lacewing") is None  # dry-runs stored nothing


def test_pre_fails_on_old_kubernetes(kube_api: KubeAPI, lacewing: Lacewing) -> None:
    kube_api.set_version(1, 27)
    result = check(lacewing, kube_api, "--pre", "--skip-version-check")
    assert result.code == 1
    assert (
        f"{X} is running the minimum Kubernetes API version\n"
        "    Kubernetes is on version [1.27], but version [1.28] or more recent is required\n"
        "    upgrade the cluster to Kubernetes 1.28 or newer\n"
    ) in result.out
    assert "pre-kubernetes-setup" not in result.out


def test_pre_fails_when_the_namespace_exists(kube_api: KubeAPI, lacewing: Lacewing) -> None:
    kube_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lacewing"}})
    result = check(lacewing, kube_api, "--pre", "--skip-version-check")
    assert result.code == 1
    assert failures(result.out) == ["control plane namespace does not already exist"]
    assert '    The "lacewing" namespace already exists\n' in result.out
    assert "lacewing upgrade" in result.out
    ok = lacewing(
        "--kubeconfig",
        str(kube_api.kubeconfig),
        "-L",
        "other",
        "check",
        "--pre",
        "--skip-version-check",
    )
    assert ok.code == 0, ok.out


def test_pre_fails_when_a_permission_is_denied(kube_api: KubeAPI, lacewing: Lacewing) -> None:
    kube_api.deny("create", "secrets")
    result = check(lacewing, kube_api, "--pre", "--skip-version-check")
    assert result.code == 1
    assert failures(result.out) == ["can create Secrets"]
    assert (
        f"{X} can create Secrets\n"
        '    not allowed to create secrets in namespace "lacewing"\n'
        "    ask a cluster administrator to install lacewing, or for `create` on secrets"
        " (kubectl auth can-i create secrets -n lacewing)\n"
    ) in result.out


def test_pre_fails_when_cluster_scoped_creates_are_forbidden(
    kube_api: KubeAPI, lacewing: Lacewing
) -> None:
    kube_api.deny("create", "clusterroles", group="rbac.authorization.k8s.io")
    result = check(lacewing, kube_api, "--pre", "--skip-version-check")
    assert failures(result.out) == ["can create non-namespaced resources"]
    assert result.code == 1


def test_pre_fails_without_read_access(kube_api: KubeAPI, lacewing: Lacewing) -> None:
    kube_api.deny("list", "secrets")
    kube_api.delete("v1", "ConfigMap", "extension-apiserver-authentication", "kube-system")
    result = check(lacewing, kube_api, "--pre", "--skip-version-check")
    assert result.code == 1
    assert failures(result.out) == [
        "can read Secrets",
        "can read extension-apiserver-authentication configmap",
    ]
    assert '    not allowed to list secrets in namespace "lacewing"\n' in result.out
    assert "    ConfigMap kube-system/extension-apiserver-authentication was not found\n" in (
        result.out
    )


# -- check (installed) ---------------------------------------------------------------------------


@pytest.fixture
def injector(kube_api: KubeAPI, tmp_path: Path) -> Iterator[Callable[[str], ThreadedInjector]]:
    """`injector(namespace)` serves the installed webhook for real (see injector.py)."""
    started: list[ThreadedInjector] = []

    def serve(namespace: str = "lacewing") -> ThreadedInjector:
        running = ThreadedInjector(kube_api, namespace, tmp_path / f"injector-{namespace}")
        running.start()
        started.append(running)
        return running

    yield serve
    for running in started:
        running.stop()


Injector = Callable[..., ThreadedInjector]


@pytest.fixture
def policy(kube_api: KubeAPI) -> Iterator[Callable[[str], ThreadedPolicy]]:
    """`policy(namespace)` runs the policy controller its pods would (policy_controller.py);
    call it once the kubelet made the pods."""
    started: list[ThreadedPolicy] = []

    def serve(namespace: str = "lacewing") -> ThreadedPolicy:
        running = ThreadedPolicy(kube_api, namespace)
        running.start()
        started.append(running)
        return running

    yield serve
    for running in started:
        running.stop()


Policy = Callable[..., ThreadedPolicy]


def install(api: KubeAPI, lacewing: Lacewing, namespace: str = "lacewing") -> None:
    """`lacewing install --crds | kubectl apply -f -`, then the same for `lacewing install`
    (applied with server-side apply through `Cluster.apply`)."""
    base = ("--kubeconfig", str(api.kubeconfig), "-L", namespace, "install")
    with Cluster.connect(str(api.kubeconfig)) as cluster:
        for args in (("--crds",), ()):
            result = lacewing(*base, *args)
            assert result.code == 0, result.err
            docs = [d for d in yaml.safe_load_all(result.out) if d]
            for doc in docs:
                cluster.apply(doc)


def test_check_waits_for_pods_then_passes(
    kube_api: KubeAPI,
    lacewing: Lacewing,
    latest_is: Callable[[str], None],
    golden: Any,
    injector: Injector,
    policy: Policy,
) -> None:
    latest_is(__version__)
    install(kube_api, lacewing)
    injector()
    kube_api.kubelet.sync()
    policy()
    result = check(lacewing, kube_api, "--wait", "0")
    assert result.code == 1
    assert failures(result.out) == [
        "control plane proxies hold certificates",
        "control plane pods are ready",
    ]
    assert "lacewing-identity\n" not in result.out  # needs lacewing-existence, which failed
    # pod names end in a random suffix: keep the golden file stable
    golden(
        "check/pods_not_ready.txt",
        re.sub(r"-[0-9a-f]{10}-[0-9a-f]{5}\b", "-HASH-XXXXX", result.out),
    )
    kube_api.kubelet.mark_ready()
    result = check(lacewing, kube_api, "--wait", "0")
    assert result.code == 0, result.out
    assert result.out.endswith("\nStatus check results are √\n")
    as_json = check(lacewing, kube_api, "--wait", "0", "-o", "json")
    assert as_json.code == 0
    golden("check/healthy.json", as_json.out)
    assert json.loads(as_json.out)["success"] is True


def test_wait_retries_until_pods_become_ready(
    kube_api: KubeAPI, lacewing: Lacewing, injector: Injector, policy: Policy
) -> None:
    install(kube_api, lacewing)
    injector()
    kube_api.kubelet.sync()
    policy()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the kubelet makes pods ready while we wait
        sleeps.append(seconds)
        if len(sleeps) == 2:
            kube_api.kubelet.mark_ready()

    out = Output(out=io.StringIO(), err=io.StringIO())  # not a terminal, like a pipe
    code = run(
        CheckCommandOptions(wait=300, skip_version_check=True),
        GlobalOptions(kubeconfig=str(kube_api.kubeconfig)),
        out,
        sleep=sleep,
    )
    text = out.out.getvalue()  # type: ignore[attr-defined]  # a StringIO
    assert code == 0, text
    assert sleeps == [1.0, 1.0]
    assert "√ control plane pods are ready\n" in text
    # not a terminal: what is being waited for is said once on stderr (not every retry)
    progress = out.err.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(progress) == 1, progress
    assert progress[0].startswith('waiting for "control plane proxies hold certificates": pod ')
    assert progress[0].endswith(": lacewing-proxy has no certificate yet (not ready) (300s left)")


def test_check_before_install_says_to_install(kube_api: KubeAPI, lacewing: Lacewing) -> None:
    result = check(lacewing, kube_api, "--wait", "0", "--skip-version-check")
    assert result.code == 1
    assert (
        f"{X} 'lacewing-config' config map exists\n"
        '    ConfigMap "lacewing-config" was not found in namespace "lacewing"\n'
        "    install the control plane: lacewing install | kubectl apply -f -\n"
    ) in result.out
    assert "lacewing-identity" not in result.out


def test_outdated_cli_is_a_warning(
    kube_api: KubeAPI, lacewing: Lacewing, latest_is: Callable[[str], None]
) -> None:
    latest_is("99.0.0")
    result = check(lacewing, kube_api, "--pre")
    assert result.code == 0
    assert (
        "‼ cli is up-to-date\n"
        f"    is running version {__version__} but the latest version is 99.0.0\n"
    ) in result.out
    assert result.out.endswith("Status check results are √\n")


# -- certificates --------------------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _replace_identity(api: KubeAPI, anchor: pki.CertifiedKey, issuer: pki.CertifiedKey) -> None:
    with Cluster.connect(str(api.kubeconfig)) as cluster:
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "lacewing-identity-trust-roots", "namespace": "lacewing"},
                "data": {"ca-bundle.crt": anchor.cert_pem},
            }
        )
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": "lacewing-identity-issuer", "namespace": "lacewing"},
                "data": {
                    "tls.crt": _b64(issuer.cert_pem),
                    "tls.key": _b64(issuer.key_pem),
                    "ca.crt": _b64(anchor.cert_pem),
                },
            }
        )


@pytest.fixture
def healthy(kube_api: KubeAPI, lacewing: Lacewing, injector: Injector, policy: Policy) -> KubeAPI:
    install(kube_api, lacewing)
    injector()
    kube_api.kubelet.sync()
    kube_api.kubelet.mark_ready()
    policy()
    return kube_api


def test_expired_issuer(healthy: KubeAPI, lacewing: Lacewing) -> None:
    anchor = pki.generate_trust_anchor()
    long_ago = datetime.now(UTC) - timedelta(days=400)
    issuer = pki.generate_issuer(anchor, now=long_ago, lifetime=timedelta(days=30))
    _replace_identity(healthy, anchor, issuer)
    result = check(lacewing, healthy, "--wait", "0", "--skip-version-check")
    assert result.code == 1
    assert failures(result.out) == ["issuer cert is within its validity period"]
    expired_at = issuer.certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        f"    certificate CN=identity.lacewing.cluster.local expired at {expired_at}\n"
    ) in result.out
    assert "renew it" in result.out


def test_issuer_not_signed_by_the_anchor(healthy: KubeAPI, lacewing: Lacewing) -> None:
    anchor, other = pki.generate_trust_anchor(), pki.generate_trust_anchor()
    _replace_identity(healthy, anchor, pki.generate_issuer(other))
    result = check(lacewing, healthy, "--wait", "0", "--skip-version-check")
    assert result.code == 1
    assert failures(result.out) == ["issuer cert is issued by the trust anchor"]
    assert "was not issued by the trust anchors" in result.out


def test_issuer_expiring_soon_is_a_warning(healthy: KubeAPI, lacewing: Lacewing) -> None:
    anchor = pki.generate_trust_anchor()
    _replace_identity(healthy, anchor, pki.generate_issuer(anchor, lifetime=timedelta(days=20)))
    result = check(lacewing, healthy, "--wait", "0", "--skip-version-check")
    assert result.code == 0, result.out
    assert failures(result.out) == ["issuer cert is valid for at least 60 days"]


def test_webhook_cert_not_matching_its_ca_bundle(healthy: KubeAPI, lacewing: Lacewing) -> None:
    stranger = pki.generate_webhook_ca()
    cert = pki.generate_serving_certificate(stranger, "lacewing-proxy-injector", "lacewing")
    with Cluster.connect(str(healthy.kubeconfig)) as cluster:
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": "lacewing-proxy-injector-k8s-tls", "namespace": "lacewing"},
                "data": {"tls.crt": _b64(cert.cert_pem), "tls.key": _b64(cert.key_pem)},
            }
        )
    result = check(lacewing, healthy, "--wait", "0", "--skip-version-check")
    assert result.code == 1
    assert failures(result.out) == ["proxy-injector webhook has valid cert"]
    assert (
        "    the proxy-injector serving certificate is not signed by its webhook configuration's"
        " caBundle\n"
    ) in result.out


def test_webhook_cert_for_the_wrong_service(healthy: KubeAPI, lacewing: Lacewing) -> None:
    with Cluster.connect(str(healthy.kubeconfig)) as cluster:
        secret = cluster.get("v1", "Secret", "lacewing-proxy-injector-k8s-tls", "lacewing")
        hook = cluster.get(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            "lacewing-lacewing-proxy-injector-webhook-config",
        )
        assert secret is not None and hook is not None
        ca = pki.generate_webhook_ca()  # signs the cert and is the caBundle: only the name is off
        wrong = pki.generate_serving_certificate(ca, "someone-else", "lacewing")
        secret["data"] = {"tls.crt": _b64(wrong.cert_pem), "tls.key": _b64(wrong.key_pem)}
        hook["webhooks"][0]["clientConfig"]["caBundle"] = _b64(ca.cert_pem)
        for obj in (secret, hook):
            obj["metadata"] = {
                k: obj["metadata"][k] for k in ("name", "namespace") if k in obj["metadata"]
            }
            cluster.apply(obj)
    result = check(lacewing, healthy, "--wait", "0", "--skip-version-check")
    # the API server now rejects the webhook's certificate too, so nothing gets injected
    assert failures(result.out) == [
        "proxy-injector webhook has valid cert",
        "dry-run pods come back injected",
    ]
    assert "is not valid for lacewing-proxy-injector.lacewing.svc" in result.out


def test_another_namespace_with_dash_l(
    kube_api: KubeAPI, lacewing: Lacewing, injector: Injector, policy: Policy
) -> None:
    install(kube_api, lacewing, namespace="mesh")
    injector("mesh")
    kube_api.kubelet.sync()
    policy("mesh")
    args = ("--kubeconfig", str(kube_api.kubeconfig), "-L", "mesh", "check", "--wait", "0")
    result = lacewing(*args, "--skip-version-check")
    assert failures(result.out) == [
        "control plane proxies hold certificates",
        "control plane pods are ready",
    ]
    assert "    kubectl -n mesh get pods; kubectl -n mesh describe pods\n" in result.out
    kube_api.kubelet.mark_ready(namespace="mesh")
    assert lacewing(*args, "--skip-version-check").code == 0
    wrong = lacewing("--kubeconfig", str(kube_api.kubeconfig), "check", "--wait", "0")
    assert 'ConfigMap "lacewing-config" was not found in namespace "lacewing"' in wrong.out


# -- faults the control plane's pods show (each injected, seen failing, then healed) -------------


def _set_container_state(api: KubeAPI, prefix: str, name: str, **fields: Any) -> str:
    pod = next(
        p for p in api.list("v1", "Pod", "lacewing") if p["metadata"]["name"].startswith(prefix)
    )
    for status in pod["status"]["containerStatuses"]:
        if status["name"] == name:
            status.update(fields)
    api.replace_status(pod)
    return str(pod["metadata"]["name"])


def test_a_control_plane_proxy_without_a_certificate(healthy: KubeAPI, lacewing: Lacewing) -> None:
    pod = _set_container_state(healthy, "lacewing-destination", "lacewing-proxy", ready=False)
    result = check(lacewing, healthy, "--wait", "0", "--skip-version-check")
    assert result.code == 1
    assert failures(result.out)[0] == "control plane proxies hold certificates"
    assert f"    pod {pod}: lacewing-proxy has no certificate yet (not ready)\n" in result.out
    assert "kubectl -n lacewing logs POD -c lacewing-proxy" in result.out
    healthy.kubelet.mark_ready()
    assert check(lacewing, healthy, "--wait", "0", "--skip-version-check").code == 0


@pytest.mark.parametrize(
    ("reason", "hint"),
    [("CrashLoopBackOff", "--previous"), ("ImagePullBackOff", "is the image on the node?")],
)
def test_states_that_will_not_heal_fail_at_once(
    healthy: KubeAPI, lacewing: Lacewing, reason: str, hint: str
) -> None:
    state = {"waiting": {"reason": reason, "message": "back-off 5m0s"}}
    pod = _set_container_state(healthy, "lacewing-identity", "identity", ready=False, state=state)
    sleeps: list[float] = []
    out = Output(out=io.StringIO(), err=io.StringIO())
    code = run(
        CheckCommandOptions(wait=300, skip_version_check=True),
        GlobalOptions(kubeconfig=str(healthy.kubeconfig)),
        out,
        sleep=sleeps.append,
    )
    text = out.out.getvalue()  # type: ignore[attr-defined]  # a StringIO
    assert code == 1
    assert sleeps == []  # no 5-minute wait before the first failure
    assert f"    pod lacewing/{pod}: container identity is in {reason} (back-off 5m0s)\n" in text, (
        text
    )
    assert hint in text
    healthy.kubelet.mark_ready()
    assert check(lacewing, healthy, "--wait", "0", "--skip-version-check").code == 0


def test_the_webhook_unreachable_from_the_api_server(
    kube_api: KubeAPI, lacewing: Lacewing, injector: Injector, policy: Policy
) -> None:
    install(kube_api, lacewing)
    kube_api.kubelet.sync()
    kube_api.kubelet.mark_ready()
    policy()
    running = injector()
    assert check(lacewing, kube_api, "--wait", "0", "--skip-version-check").code == 0
    running.stop()  # the API server's calls to the webhook now fail (failurePolicy Ignore)
    result = check(lacewing, kube_api, "--wait", "0", "--skip-version-check")
    assert result.code == 1
    assert failures(result.out) == ["dry-run pods come back injected"]
    assert "was admitted without a lacewing-proxy container" in result.out
    assert "kubectl -n lacewing get pods,endpoints lacewing-proxy-injector" in result.out
    assert kube_api.list("v1", "Pod", "default") == []  # a dry run: nothing was stored
    injector()  # healed
    assert check(lacewing, kube_api, "--wait", "0", "--skip-version-check").code == 0


def test_the_policy_api_not_answering_fails_with_a_hint(
    kube_api: KubeAPI, lacewing: Lacewing, injector: Injector, policy: Policy
) -> None:
    install(kube_api, lacewing)
    injector()
    kube_api.kubelet.sync()
    kube_api.kubelet.mark_ready()
    result = check(lacewing, kube_api, "--wait", "0", "--skip-version-check")
    assert result.code == 1  # the pod is "ready", but nothing answers on its admin port
    assert failures(result.out) == ["the policy API answers"]
    assert "did not answer on its admin port 9990" in result.out
    assert "    kubectl -n lacewing logs deploy/lacewing-policy -c policy; it answers once" in (
        result.out
    )
    running = policy()  # the controller starts: its watches list, it knows its own pod
    assert check(lacewing, kube_api, "--wait", "0", "--skip-version-check").code == 0
    running.stop()
    result = check(lacewing, kube_api, "--wait", "0", "--skip-version-check")
    assert failures(result.out) == ["the policy API answers"]


# -- node architectures (check --pre) -------------------------------------------------------------


def _node_arch(api: KubeAPI, name: str | None, arch: str) -> None:
    nodes = api.list("v1", "Node")
    node = copy.deepcopy(next(n for n in nodes if name in (None, n["metadata"]["name"])))
    node["status"]["nodeInfo"]["architecture"] = arch
    api.replace_status(node)


def test_pre_refuses_32_bit_arm_nodes(kube_api: KubeAPI, lacewing: Lacewing) -> None:
    _node_arch(kube_api, None, "arm")
    node = kube_api.list("v1", "Node")[0]["metadata"]["name"]
    result = check(lacewing, kube_api, "--pre", "--skip-version-check")
    assert result.code == 1
    assert failures(result.out) == ["nodes run a supported architecture"]
    assert (
        f"{X} nodes run a supported architecture\n"
        f"    node {node} is arm (32-bit ARM, armv7)\n"
        "    lacewing runs on amd64, arm64 only\n"
        "    lacewing runs on amd64 and arm64: 32-bit Raspberry Pi OS (armv7) is not supported"
    ) in result.out
    second = copy.deepcopy(kube_api.list("v1", "Node")[0])
    second["metadata"] = {"name": "pi-64", "labels": {"kubernetes.io/arch": "arm64"}}
    second["status"]["nodeInfo"]["architecture"] = "arm64"
    kube_api.create(second)
    kube_api.replace_status(second)
    mixed = check(lacewing, kube_api, "--pre", "--skip-version-check")
    assert mixed.code == 0, mixed.out  # one node can run it: a warning only
    assert failures(mixed.out) == ["every node runs a supported architecture"]
    assert f"    node {node} is arm (32-bit ARM, armv7)\n" in mixed.out
    _node_arch(kube_api, node, "arm64")
    healed = check(lacewing, kube_api, "--pre", "--skip-version-check")
    assert healed.code == 0 and failures(healed.out) == [], healed.out
