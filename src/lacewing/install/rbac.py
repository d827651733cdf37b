"""What each control plane component may do in the cluster, as data.

`CLUSTER_RULES[component]` is the list of PolicyRules of the component's ClusterRole;
`NAMESPACE_RULES[component]` those of a Role in the control plane namespace (for things it
must only touch there: leases, its own config). `rbac_objects` renders ServiceAccounts,
ClusterRoles, ClusterRoleBindings, Roles and RoleBindings from the tables; a component with
no rules gets only its ServiceAccount. Names are `lacewing-<ns>-<component>` for cluster
scoped objects (two control planes in different namespaces do not collide) and
`lacewing-<component>` inside the namespace.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLUSTER_RULES", "NAMESPACE_RULES", "SERVICE_ACCOUNTS", "rbac_objects"]

_READ = ["get", "list", "watch"]
_POLICY_KINDS = [
    "servers",
    "authorizationpolicies",
    "meshtlsauthentications",
    "networkauthentications",
    "httproutes",
]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


SERVICE_ACCOUNTS: tuple[str, ...] = (
    "identity",
    "destination",
    "policy",
    "proxy-injector",
)

CLUSTER_RULES: dict[str, list[dict[str, Any]]] = {
    "identity": [
        _rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
        _rule([""], ["events"], ["create", "patch"]),
    ],
    "destination": [
        _rule([""], ["pods", "endpoints", "services", "nodes", "namespaces"], _READ),
        _rule(["discovery.k8s.io"], ["endpointslices"], _READ),
        _rule(["apps"], ["replicasets"], _READ),
        _rule(["batch"], ["jobs"], _READ),
        _rule(["lacewing.io"], ["serviceprofiles"], _READ),
        _rule(["policy.lacewing.io"], _POLICY_KINDS, _READ),
        _rule(["policy.lacewing.io"], ["grpcroutes"], _READ),
        _rule(["gateway.networking.k8s.io"], ["httproutes", "grpcroutes"], _READ),  # if installed
        # Route status (Accepted / ResolvedRefs per parent), written by destination.
        _rule(
            ["policy.lacewing.io", "gateway.networking.k8s.io"],
            ["httproutes/status", "grpcroutes/status"],
            ["get", "patch", "update"],
        ),
    ],
    # Servers, AuthorizationPolicies, the authentications, HTTPRoutes (those with a Server
    # parent are inbound routes), and the Pods and Namespaces whose
    # labels, ports, probes and default-policy annotations they apply to.
    "policy": [
        _rule([""], ["pods", "namespaces"], _READ),
        _rule(["policy.lacewing.io"], _POLICY_KINDS, _READ),
        _rule(["gateway.networking.k8s.io"], ["httproutes"], _READ),  # if installed
    ],
    "proxy-injector": [
        _rule([""], ["namespaces", "replicationcontrollers"], _READ),
        _rule([""], ["pods"], ["get", "list"]),
        _rule(["apps"], ["replicasets", "deployments", "statefulsets", "daemonsets"], _READ),
        _rule(["batch"], ["cronjobs", "jobs"], _READ),
        _rule([""], ["events"], ["create", "patch"]),
    ],
}

NAMESPACE_RULES: dict[str, list[dict[str, Any]]] = {
    # The injector reads lacewing-config for the install values it injects with.
    "proxy-injector": [_rule([""], ["configmaps"], ["get"])],
}


def rbac_objects(namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    """ServiceAccounts, then cluster roles and bindings, then namespaced roles and bindings."""

    def meta(name: str, component: str, namespaced: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name}
        if namespaced:
            out["namespace"] = namespace
        out["labels"] = {**labels, "lacewing.io/control-plane-component": component}
        return out

    def subject(component: str) -> list[dict[str, str]]:
        return [{"kind": "ServiceAccount", "name": f"lacewing-{component}", "namespace": namespace}]

    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(f"lacewing-{c}", c, True),
        }
        for c in SERVICE_ACCOUNTS
    ]
    for c, rules in CLUSTER_RULES.items():
        name = f"lacewing-{namespace}-{c}"
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": meta(name, c, False),
                "rules": rules,
            }
        )
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": meta(name, c, False),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": subject(c),
            }
        )
    for c, rules in NAMESPACE_RULES.items():
        name = f"lacewing-{c}"
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta(name, c, True),
                "rules": rules,
            }
        )
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta(name, c, True),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": subject(c),
            }
        )
    return docs
