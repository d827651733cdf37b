"""`lacewing-existence` and `lacewing-config`: is the control plane there, and running?

Existence checks read live state and may be retried by `--wait` (pods becoming ready, the
ReplicaSets of a fresh Deployment appearing). A component is ready when at least one of its pods
is Running with a Ready condition. ReplicaSets are ready when every component Deployment owns
one and none reports a `ReplicaFailure` condition (quota, admission refusals).

"cluster networks contain all node podCIDRs" checks each Node's `spec.podCIDR(s)` is inside
one of the `clusterNetworks` install values; a pod outside them would be treated as an
outside-the-cluster peer.

`lacewing-config` checks that the objects `lacewing install` creates exist, kind by kind
(`CONFIG_KINDS`): the expected names come from the manifests `install` renders
(`facts.rendered()`), so this list can never drift from what install emits.

"the policy API answers" (`checks.policy`) asks the policy controller about its own pod.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lacewing.healthcheck.checks import installed
from lacewing.healthcheck.checks.policy import POLICY_API_ANSWERS
from lacewing.healthcheck.facts import Facts
from lacewing.healthcheck.model import Category, Check, Outcome

__all__ = ["CONFIG_KINDS", "LACEWING_CONFIG", "LACEWING_EXISTENCE"]

Obj = dict[str, Any]


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def config_map_exists(facts: Facts) -> Outcome:
    installed.config_map(facts)
    return Outcome.ok()


def replica_sets_ready(facts: Facts) -> Outcome:
    ns = facts.options.namespace
    replica_sets = facts.list("apps/v1", "ReplicaSet", ns)
    problems: list[str] = []
    for deployment in installed.COMPONENTS.values():
        owned = [
            rs
            for rs in replica_sets
            if any(
                ref.get("kind") == "Deployment" and ref.get("name") == deployment
                for ref in _meta(rs).get("ownerReferences") or []
            )
        ]
        if not owned:
            problems.append(f"no ReplicaSet for Deployment {deployment} yet")
        for rs in owned:
            for cond in (rs.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
                    problems.append(f"ReplicaSet {_meta(rs).get('name')}: {cond.get('message')}")
    return Outcome.fail("\n".join(problems)) if problems else Outcome.ok()


def no_unschedulable_pods(facts: Facts) -> Outcome:
    problems: list[str] = []
    for pod in facts.list("v1", "Pod", facts.options.namespace):
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
            ):
                problems.append(f"pod {_meta(pod).get('name')}: {cond.get('message', '')}".strip())
    return Outcome.fail("\n".join(problems)) if problems else Outcome.ok()


def _pod_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def control_plane_pods_ready(facts: Facts) -> Outcome:
    pods = installed.control_plane_pods(facts)
    stuck = installed.stuck(pods)
    if stuck is not None:
        return stuck
    missing: list[str] = []
    for component, deployment in installed.COMPONENTS.items():
        mine = [
            p
            for p in pods
            if (_meta(p).get("labels") or {}).get(installed.COMPONENT_LABEL) == component
        ]
        if not mine:
            missing.append(f'No running pods for "{deployment}"')
        elif not any(_pod_ready(p) for p in mine):
            missing.append(f'No ready pods for "{deployment}"')
    return Outcome.fail("\n".join(missing)) if missing else Outcome.ok()


def cluster_networks_contain_pod_cidrs(facts: Facts) -> Outcome:
    networks = installed.cluster_networks(facts)
    outside: list[str] = []
    for node in facts.list("v1", "Node"):
        spec = node.get("spec") or {}
        cidrs = list(spec.get("podCIDRs") or []) or (
            [spec["podCIDR"]] if spec.get("podCIDR") else []
        )
        for cidr in cidrs:
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                outside.append(f"node {_meta(node).get('name')} has an unreadable podCIDR {cidr!r}")
                continue
            if not any(
                net.version == n.version and net.subnet_of(n)  # type: ignore[arg-type]
                for n in networks
            ):
                outside.append(f"node {_meta(node).get('name')} has podCIDR {cidr}")
    if outside:
        joined = ",".join(str(n) for n in networks)
        return Outcome.fail(
            "the clusterNetworks value does not contain all node podCIDRs:\n" + "\n".join(outside),
            hint=f"add the podCIDRs to clusterNetworks (now {joined}): "
            "lacewing upgrade --set clusterNetworks=... | kubectl apply -f -",
        )
    return Outcome.ok()


LACEWING_EXISTENCE: Category[Facts] = Category(
    "lacewing-existence",
    (
        Check(
            "'lacewing-config' config map exists",
            "install the control plane: lacewing install | kubectl apply -f -",
            config_map_exists,
            fatal=True,
            retry_deadline=True,
        ),
        Check(
            "control plane replica sets are ready",
            "kubectl -n {namespace} get deploy,rs; kubectl -n {namespace} describe rs",
            replica_sets_ready,
            retry_deadline=True,
        ),
        Check(
            "no unschedulable pods",
            "the cluster lacks room for the control plane: kubectl -n {namespace} describe pods",
            no_unschedulable_pods,
            retry_deadline=True,
        ),
        Check(
            "control plane proxies hold certificates",
            "a proxy is ready only once identity certified it: kubectl -n {namespace} logs POD"
            " -c lacewing-proxy; kubectl -n {namespace} logs deploy/lacewing-identity -c identity",
            installed.proxies_certified,
            retry_deadline=True,
        ),
        Check(
            "control plane pods are ready",
            "kubectl -n {namespace} get pods; kubectl -n {namespace} describe pods",
            control_plane_pods_ready,
            fatal=True,
            retry_deadline=True,
        ),
        POLICY_API_ANSWERS,
        Check(
            "cluster networks contain all node podCIDRs",
            "add every node's podCIDR to clusterNetworks: lacewing upgrade --set ...",
            cluster_networks_contain_pod_cidrs,
        ),
    ),
    needs=("kubernetes-version",),
)


@dataclass(frozen=True)
class ConfigKind:
    description: str  # "control plane ClusterRoles exist"
    api_version: str
    kind: str
    hint: str = "re-apply the install manifests: lacewing upgrade | kubectl apply -f -"


CONFIG_KINDS: tuple[ConfigKind, ...] = (
    ConfigKind("control plane Namespace exists", "v1", "Namespace"),
    ConfigKind("control plane ClusterRoles exist", "rbac.authorization.k8s.io/v1", "ClusterRole"),
    ConfigKind(
        "control plane ClusterRoleBindings exist",
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
    ),
    ConfigKind("control plane ServiceAccounts exist", "v1", "ServiceAccount"),
    ConfigKind(
        "control plane CustomResourceDefinitions exist",
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        hint="install the CRDs: lacewing install --crds | kubectl apply -f -",
    ),
    ConfigKind(
        "control plane MutatingWebhookConfigurations exist",
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    ),
)


def objects_exist(spec: ConfigKind) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        expected = [
            o
            for o in facts.rendered()
            if o.get("kind") == spec.kind and o.get("apiVersion") == spec.api_version
        ]
        missing: list[str] = []
        for obj in expected:
            meta = _meta(obj)
            name, ns = str(meta.get("name")), meta.get("namespace")
            if facts.get(spec.api_version, spec.kind, name, ns) is None:
                missing.append(name)
        if missing:
            return Outcome.fail(f"missing {spec.kind}s: {', '.join(sorted(missing))}")
        return Outcome.ok()

    return check


LACEWING_CONFIG: Category[Facts] = Category(
    "lacewing-config",
    tuple(
        Check(k.description, k.hint, objects_exist(k), fatal=k.kind == "Namespace")
        for k in CONFIG_KINDS
    ),
    needs=("lacewing-existence",),
)
