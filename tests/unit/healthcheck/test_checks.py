"""Individual checks against an in-memory cluster: what passes, what fails, with which words."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.healthcheck.fakes import NOW, FakeCluster, make_facts, obj

from lacewing.errors import LacewingError
from lacewing.healthcheck.catalog import categories
from lacewing.healthcheck.checks import existence, kubernetes, pre
from lacewing.healthcheck.checks import versions as vchecks
from lacewing.healthcheck.model import Outcome, Status
from lacewing.healthcheck.runner import run_checks

NS = "lacewing"


def config_map(version: str = "0.1.0", values: str = "clusterNetworks: 10.0.0.0/8\n") -> Any:
    return obj(
        "v1", "ConfigMap", "lacewing-config", NS, data={"version": version, "values": values}
    )


def pod(component: str, *, ready: bool, proxy_ready: bool = True, version: str = "0.1.0") -> Any:
    labels = {
        "lacewing.io/control-plane-ns": NS,
        "lacewing.io/control-plane-component": component,
        "lacewing.io/proxy-version": version,
    }
    return obj(
        "v1",
        "Pod",
        f"lacewing-{component}-abc",
        NS,
        metadata={"labels": labels},
        status={
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "lacewing-proxy", "ready": proxy_ready}],
        },
    )


def node(name: str, cidr: str) -> Any:
    return obj("v1", "Node", name, spec={"podCIDR": cidr})


def test_minimum_kubernetes_version() -> None:
    assert kubernetes.minimum_version(make_facts(FakeCluster(version=(1, 28)))) == Outcome.ok()
    failed = kubernetes.minimum_version(make_facts(FakeCluster(version=(1, 27))))
    assert failed.error == (
        "Kubernetes is on version [1.27], but version [1.28] or more recent is required"
    )


def test_facts_are_cached_and_volatile_ones_refreshed() -> None:
    cluster = FakeCluster().add(config_map())
    facts = make_facts(cluster)
    for _ in range(3):
        facts.get("v1", "ConfigMap", "lacewing-config", NS)
    assert cluster.calls == 1
    facts.refresh()
    facts.get("v1", "ConfigMap", "lacewing-config", NS)
    assert cluster.calls == 2


def test_a_failed_connection_is_remembered_not_retried_by_every_check() -> None:
    attempts = []
    facts = make_facts(unreachable=True)
    for _ in range(2):
        with pytest.raises(LacewingError, match="no kubeconfig"):
            attempts.append(1)
            facts.cluster()
    report = run_checks(categories(pre=True, skip_version_check=True), facts)
    assert [(c.name, [r.status for r in c.results]) for c in report.categories] == [
        ("kubernetes-api", [Status.ERROR])
    ]
    failed = report.categories[0].results[0]
    assert (failed.error, failed.hint) == ("no kubeconfig found", "set KUBECONFIG")


def test_namespace_must_not_exist_before_install() -> None:
    assert pre.namespace_absent(make_facts(FakeCluster())).passed
    outcome = pre.namespace_absent(make_facts(FakeCluster().add(obj("v1", "Namespace", NS))))
    assert outcome.error == 'The "lacewing" namespace already exists'
    assert outcome.hint is not None and "lacewing upgrade" in outcome.hint


def test_can_create_dry_runs_rendered_objects_in_an_existing_namespace() -> None:
    rendered = [
        obj("v1", "Namespace", NS),
        obj("v1", "ServiceAccount", "lacewing-identity", NS),
        obj("apps/v1", "Deployment", "lacewing-identity", NS),
    ]
    cluster = FakeCluster()
    facts = make_facts(cluster, rendered=rendered)
    assert pre.can_create(pre.NAMESPACED_KINDS[0])(facts).passed
    assert pre.can_create_cluster_scoped(facts).passed
    assert [(o["kind"], o["metadata"].get("namespace")) for o in cluster.dry_runs] == [
        ("ServiceAccount", "default"),
        ("Namespace", None),
    ]


def test_cluster_scoped_objects_that_exist_already_pass_but_denials_fail() -> None:
    crd = obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "servers.policy.lacewing.io")
    cluster = FakeCluster().add(crd)
    assert pre.can_create_cluster_scoped(make_facts(cluster, rendered=[crd])).passed
    cluster.denied.add(("create", "CustomResourceDefinition"))
    cluster.add(obj("v1", "ConfigMap", "extension-apiserver-authentication", "kube-system"))
    node = obj("v1", "Node", "pi-1")
    node["status"] = {"nodeInfo": {"architecture": "arm64"}}
    cluster.add(node)
    report = run_checks([pre.PRE_KUBERNETES_SETUP], make_facts(cluster, rendered=[crd]))
    failed = [r for r in report.categories[0].results if r.status is Status.ERROR]
    assert [(r.description, r.error) for r in failed] == [
        (
            "can create non-namespaced resources",
            "CustomResourceDefinition is forbidden: cannot create",
        )
    ]


def test_can_create_fails_when_access_review_denies() -> None:
    cluster = FakeCluster(denied={("create", "secrets")})
    outcome = pre.can_create(pre.NAMESPACED_KINDS[-1])(make_facts(cluster))
    assert outcome.error == 'not allowed to create secrets in namespace "lacewing"'
    assert (
        outcome.hint is not None and "kubectl auth can-i create secrets -n lacewing" in outcome.hint
    )


def test_clock_skew() -> None:
    assert pre.no_clock_skew(make_facts(FakeCluster(now=NOW + timedelta(minutes=4)))).passed
    skewed = pre.no_clock_skew(make_facts(FakeCluster(now=NOW - timedelta(minutes=10))))
    assert skewed.error.startswith("clock skew between this machine and the API server is 600s")
    assert not pre.no_clock_skew(make_facts(FakeCluster(now=None))).passed


def test_control_plane_pods_ready_names_what_is_missing() -> None:
    pods = [pod(c, ready=True) for c in ("identity", "destination", "policy")]
    cluster = FakeCluster().add(*pods, pod("proxy-injector", ready=False))
    outcome = existence.control_plane_pods_ready(make_facts(cluster))
    assert outcome.error == 'No ready pods for "lacewing-proxy-injector"'
    cluster = FakeCluster().add(*pods)
    outcome = existence.control_plane_pods_ready(make_facts(cluster))
    assert outcome.error == 'No running pods for "lacewing-proxy-injector"'
    cluster.add(pod("proxy-injector", ready=True))
    assert existence.control_plane_pods_ready(make_facts(cluster)).passed


def test_cluster_networks_must_contain_node_pod_cidrs() -> None:
    cluster = FakeCluster().add(config_map(), node("pi-1", "10.42.0.0/24"))
    assert existence.cluster_networks_contain_pod_cidrs(make_facts(cluster)).passed
    cluster.add(node("pi-2", "192.168.7.0/24"))
    outcome = existence.cluster_networks_contain_pod_cidrs(make_facts(cluster))
    assert outcome.error.endswith("node pi-2 has podCIDR 192.168.7.0/24")
    assert outcome.hint is not None and "now 10.0.0.0/8" in outcome.hint


def test_cluster_networks_default_when_unset() -> None:
    cluster = FakeCluster().add(config_map(values="ha: false\n"), node("n", "192.168.7.0/24"))
    assert existence.cluster_networks_contain_pod_cidrs(make_facts(cluster)).passed
    cluster.add(node("odd", "203.0.113.0/24"))
    assert not existence.cluster_networks_contain_pod_cidrs(make_facts(cluster)).passed


def test_lacewing_config_expects_what_install_renders() -> None:
    rendered = [obj("rbac.authorization.k8s.io/v1", "ClusterRole", n) for n in ("a", "b")]
    cluster = FakeCluster().add(rendered[0])
    check = existence.objects_exist(existence.CONFIG_KINDS[1])
    outcome = check(make_facts(cluster, rendered=rendered))
    assert outcome.error == "missing ClusterRoles: b"
    cluster.add(rendered[1])
    assert check(make_facts(cluster, rendered=rendered)).passed


def test_version_checks() -> None:
    cluster = FakeCluster().add(config_map(version="0.1.0"), pod("identity", ready=True))
    facts = make_facts(cluster, latest="0.2.0", cli_version="0.1.0")
    assert vchecks.can_determine_latest(facts).passed
    assert vchecks.cli_up_to_date(facts).error == (
        "is running version 0.1.0 but the latest version is 0.2.0"
    )
    assert not vchecks.control_plane_up_to_date(facts).passed
    assert vchecks.control_plane_matches_cli(facts).passed
    assert vchecks.proxies_healthy(facts).passed
    up_to_date = make_facts(cluster, latest="0.1.0", cli_version="0.1.0")
    assert vchecks.cli_up_to_date(up_to_date).passed
    mismatch = make_facts(cluster, cli_version="0.2.0", latest="0.2.0")
    assert vchecks.control_plane_matches_cli(mismatch).error == (
        "control plane running 0.1.0 but cli running 0.2.0"
    )
    assert "lacewing-identity-abc (0.1.0)" in vchecks.proxies_match_cli(mismatch).error


def test_unknown_latest_version_is_a_warning_with_the_skip_hint() -> None:
    facts = make_facts(FakeCluster(), latest=None)
    report = run_checks([vchecks.LACEWING_VERSION], facts)
    results = report.categories[0].results
    assert [r.status for r in results] == [Status.WARNING, Status.WARNING]
    assert results[1].error.startswith("unable to determine the latest version: cannot reach")
    assert all("LACEWING_SKIP_VERSION_CHECK=1" in r.hint for r in results)
    assert report.success


def test_proxy_not_ready_is_reported_per_pod() -> None:
    cluster = FakeCluster().add(pod("identity", ready=True, proxy_ready=False))
    outcome = vchecks.proxies_healthy(make_facts(cluster))
    assert (
        outcome.error
        == "pod lacewing-identity-abc: lacewing-proxy has no certificate yet (not ready)"
    )


def test_skip_version_check_drops_every_latest_version_lookup() -> None:
    chosen = categories(pre=False, skip_version_check=True)
    names = [c.name for c in chosen]
    assert "lacewing-version" not in names
    descriptions = [k.description for c in chosen for k in c.checks]
    assert not [d for d in descriptions if "up-to-date" in d]
    assert "control plane and cli versions match" in descriptions


def replica_set(deployment: str, failure: str | None = None) -> Any:
    conditions = (
        [{"type": "ReplicaFailure", "status": "True", "message": failure}] if failure else []
    )
    return obj(
        "apps/v1",
        "ReplicaSet",
        f"{deployment}-5d8f",
        NS,
        metadata={"ownerReferences": [{"kind": "Deployment", "name": deployment}]},
        status={"conditions": conditions},
    )


def test_replica_sets_must_exist_and_not_fail() -> None:
    names = ["lacewing-identity", "lacewing-destination", "lacewing-policy"]
    cluster = FakeCluster().add(*(replica_set(n) for n in names))
    outcome = existence.replica_sets_ready(make_facts(cluster))
    assert outcome.error == "no ReplicaSet for Deployment lacewing-proxy-injector yet"
    cluster.add(replica_set("lacewing-proxy-injector", failure='pods "x" is forbidden: quota'))
    outcome = existence.replica_sets_ready(make_facts(cluster))
    assert outcome.error == 'ReplicaSet lacewing-proxy-injector-5d8f: pods "x" is forbidden: quota'


def test_unschedulable_pods_are_named() -> None:
    stuck = obj(
        "v1",
        "Pod",
        "lacewing-policy-1",
        NS,
        status={
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/1 nodes are available: 1 Insufficient memory.",
                }
            ]
        },
    )
    assert existence.no_unschedulable_pods(make_facts(FakeCluster())).passed
    outcome = existence.no_unschedulable_pods(make_facts(FakeCluster().add(stuck)))
    assert outcome.error == "pod lacewing-policy-1: 0/1 nodes are available: 1 Insufficient memory."
