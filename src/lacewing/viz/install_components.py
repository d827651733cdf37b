"""viz's own components in `lacewing-viz`: tap (the tap relay) and web (the dashboard). Pure.

    ServiceAccount, ClusterRole (pods get/list, deployments get), ClusterRoleBinding   tap
    Role + RoleBinding in the control plane's namespace   tap may read the trust anchors'
                        ConfigMap (only that one), which it cannot mount across namespaces
    Secret              tap-token: a random token (made at each render) that /tap requests
                        must carry; `viz tap` reads it, so reading it is the right to tap
    Deployment, Service tap: `lacewing viz tap-relay` (`lacewing.viz.taprelay`) on 8089; a
                        projected token for identity's audience, so identity gives it the
                        certificate of `tap.lacewing-viz.serviceaccount.identity.lacewing.<td>`,
                        the one identity every proxy's default tap policy allows
    ServiceAccount, ClusterRole (read pods and workloads), ClusterRoleBinding   web
    Role + RoleBinding  web-tap: the dashboard's live tap is `viz tap`'s, so web may read the
                        tap-token Secret (only that one) and proxy to pods of lacewing-viz
    Deployment, Service web: `lacewing viz dashboard --here` on 8084 (Linkerd's port) with
                        the viz Prometheus (or `prometheusUrl`), what `viz dashboard` on
                        Kubernetes reaches through the API server's pod proxy

Both run the lacewing image as a non-root user with a read-only root filesystem, are never
injected (the namespace is not), and are sized for a Raspberry Pi.
"""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lacewing.viz.install import VizValues

__all__ = ["TAP_LABELS", "WEB_LABELS", "WEB_PORT", "render_components"]

TAP_PORT = 8089
WEB_PORT = 8084
TAP_LABELS = {"app.kubernetes.io/name": "tap", "app.kubernetes.io/part-of": "lacewing-viz"}
WEB_LABELS = {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "lacewing-viz"}
UID = 2103
TRUST_ROOTS_CONFIG_MAP = "lacewing-identity-trust-roots"
Doc = dict[str, Any]


def _meta(v: VizValues, name: str, labels: dict[str, str], ns: str | None = "") -> Doc:
    meta: Doc = {"name": name}
    if ns is not None:
        meta["namespace"] = ns or v.namespace
    meta["labels"] = {"lacewing.io/extension": "viz", **labels}
    return meta


def _rbac(v: VizValues, name: str, labels: dict[str, str], rules: list[Doc]) -> list[Doc]:
    role = f"lacewing-viz-{name}"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(v, name, labels)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(v, role, labels, ns=None),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(v, role, labels, ns=None),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": v.namespace}],
        },
    ]


def _container(v: VizValues, name: str, args: list[str], port: int) -> Doc:
    return {
        "name": name,
        "image": v.image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": [
            {"name": env, "valueFrom": {"fieldRef": {"fieldPath": path}}}
            for env, path in (
                ("LACEWING_POD_NAMESPACE", "metadata.namespace"),
                ("LACEWING_POD_SERVICE_ACCOUNT", "spec.serviceAccountName"),
            )
        ],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 5},
        "livenessProbe": {
            "httpGet": {"path": "/ready", "port": port},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
        },
        "resources": {
            "requests": {"cpu": "10m", "memory": "48Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def _deployment(v: VizValues, name: str, labels: dict[str, str], container: Doc,
                volumes: list[Doc]) -> list[Doc]:  # fmt: skip
    port = container["ports"][0]["containerPort"]
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(v, name, labels),
            "spec": {
                "type": "ClusterIP",
                "selector": labels,
                "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(v, name, labels),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {
                        "labels": {"lacewing.io/extension": "viz", **labels},
                        "annotations": {"lacewing.io/inject": "disabled"},
                    },
                    "spec": {
                        "serviceAccountName": name,
                        "containers": [container],
                        **({"volumes": volumes} if volumes else {}),
                    },
                },
            },
        },
    ]


def _tap(v: VizValues, token: str) -> list[Doc]:
    from lacewing.install.sidecar import (
        IDENTITY_TOKEN_AUDIENCE,
        IDENTITY_TOKEN_DIR,
        IDENTITY_TOKEN_PATH,
        IDENTITY_TOKEN_VOLUME,
    )

    cp = v.control_plane_namespace
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
    ]
    docs = _rbac(v, "tap", TAP_LABELS, rules)
    role = "lacewing-viz-tap-trust-roots"
    docs += [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(v, role, TAP_LABELS, ns=cp),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "verbs": ["get"],
                    "resourceNames": [TRUST_ROOTS_CONFIG_MAP],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(v, role, TAP_LABELS, ns=cp),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "tap", "namespace": v.namespace}],
        },
    ]
    identity = f"lacewing-identity.{cp}.svc.{v.cluster_domain}:8080"
    args = [
        "viz", "tap-relay", "--listen", f"0.0.0.0:{TAP_PORT}",
        "--identity-addr", identity, "--identity-token-file", IDENTITY_TOKEN_PATH,
        "--trust-roots-configmap", f"{cp}/{TRUST_ROOTS_CONFIG_MAP}",
        "--trust-domain", v.trust_domain, "--state-dir", "/var/run/lacewing-tap",
        "--token-file", "/var/run/lacewing-tap-token/token",
    ]  # fmt: skip
    container = _container(v, "tap", args, TAP_PORT)
    container["volumeMounts"] = [
        {"name": IDENTITY_TOKEN_VOLUME, "mountPath": IDENTITY_TOKEN_DIR, "readOnly": True},
        {"name": "state", "mountPath": "/var/run/lacewing-tap"},
        {"name": "token", "mountPath": "/var/run/lacewing-tap-token", "readOnly": True},
    ]
    account_token = {
        "audience": IDENTITY_TOKEN_AUDIENCE,
        "expirationSeconds": 86400,
        "path": IDENTITY_TOKEN_PATH.rsplit("/", 1)[1],
    }
    projected = {"serviceAccountToken": account_token}
    volumes = [
        {"name": IDENTITY_TOKEN_VOLUME, "projected": {"sources": [projected]}},
        {"name": "state", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        {"name": "token", "secret": {"secretName": "tap-token"}},
    ]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(v, "tap-token", TAP_LABELS),
        "type": "Opaque",
        "data": {"token": base64.b64encode(token.encode()).decode()},
    }
    return [*docs, secret, *_deployment(v, "tap", TAP_LABELS, container, volumes)]


def _web(v: VizValues) -> list[Doc]:
    rules = [
        {"apiGroups": [""], "resources": ["pods", "namespaces", "services"],
         "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"],
         "verbs": ["get", "list"]},
    ]  # fmt: skip
    prometheus = v.prometheus_url or f"http://prometheus.{v.namespace}.svc.{v.cluster_domain}:9090"
    args = [
        "viz", "dashboard", "--here", "--no-browser", "--address", "0.0.0.0",
        "--port", str(WEB_PORT), "--prometheus-url", prometheus,
    ]  # fmt: skip
    container = _container(v, "web", args, WEB_PORT)
    container["readinessProbe"]["httpGet"]["path"] = "/"
    container["livenessProbe"]["httpGet"]["path"] = "/"
    role = "lacewing-viz-web-tap"
    tap_rules = [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
         "resourceNames": ["tap-token"]},
        {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]},
    ]  # fmt: skip
    tap = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(v, role, WEB_LABELS),
            "rules": tap_rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(v, role, WEB_LABELS),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": v.namespace}],
        },
    ]
    docs = _rbac(v, "web", WEB_LABELS, rules) + tap
    return docs + _deployment(v, "web", WEB_LABELS, container, [])


def render_components(v: VizValues, token: str | None = None) -> list[Doc]:
    return _tap(v, token or secrets.token_urlsafe(32)) + _web(v)
