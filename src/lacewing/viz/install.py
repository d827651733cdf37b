"""`lacewing viz install`: the viz extension's manifests (pure; the CLI prints them).

    Namespace           lacewing-viz (never injected: Prometheus scrapes proxies in plaintext
                        on their admin port, it needs no proxy of its own)
    ConfigMap           lacewing-viz-config: the values used (`prometheusUrl`, ...), read by
                        `viz check` and `viz stat`
    ServiceAccount, ClusterRole (get/list/watch pods), ClusterRoleBinding   prometheus
    ConfigMap           prometheus-config: prometheus.yml, job `lacewing-proxy` from
                        `lacewing.viz.scrapeconfig` (pod discovery, port lacewing-admin, the
                        relabelling to namespace/pod/deployment/...), job
                        `lacewing-controller` (control-plane pods' port admin-http, which
                        `lacewing install` does not declare yet), and Prometheus itself
    Deployment, Service prometheus: the upstream image, sized for a Raspberry Pi (requests
                        50m / 128Mi, limits 500m / 384Mi, 6h retention, 1 GiB emptyDir),
                        non-root, read-only root filesystem, /-/ready and /-/healthy probes

Then viz's own components, tap and web (`lacewing.viz.install_components`), with or without
our Prometheus. With `--set prometheusUrl=URL` no Prometheus is rendered: that
Prometheus must scrape the proxies itself (`lacewing.viz.scrapeconfig.kubernetes_proxy_job`
prints the job). Values come from `--set key=value`; an unknown key or a bad value is a
`ConfigError` naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from lacewing.errors import ConfigError
from lacewing.install.values import ImageValues
from lacewing.viz.install_components import render_components
from lacewing.viz.scrapeconfig import kubernetes_controller_job, kubernetes_proxy_job

__all__ = [
    "CONFIG_MAP",
    "NAMESPACE",
    "PROMETHEUS_LABELS",
    "VizValues",
    "parse_sets",
    "render_viz",
]

NAMESPACE = "lacewing-viz"
CONFIG_MAP = "lacewing-viz-config"
PROMETHEUS = "prometheus"
PORT = 9090
PROMETHEUS_LABELS = {
    "app.kubernetes.io/name": PROMETHEUS,
    "app.kubernetes.io/part-of": "lacewing-viz",
}
EXTENSION_LABEL = ("lacewing.io/extension", "viz")
NOBODY = 65534
Doc = dict[str, Any]


@dataclass(frozen=True)
class VizValues:
    namespace: str = NAMESPACE
    control_plane_namespace: str = "lacewing"
    prometheus_url: str = ""  # an existing Prometheus: render none of ours
    prometheus_image: str = "prom/prometheus:v2.55.1"
    scrape_interval: str = "10s"
    retention: str = "6h"
    cpu_request: str = "50m"
    cpu_limit: str = "500m"
    memory_request: str = "128Mi"
    memory_limit: str = "384Mi"
    storage_limit: str = "1Gi"
    image: str = field(default_factory=lambda: ImageValues().ref)  # tap and web
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"


_KEYS = {
    "prometheusUrl": "prometheus_url",
    "prometheus.image": "prometheus_image",
    "prometheus.scrapeInterval": "scrape_interval",
    "prometheus.retention": "retention",
    "prometheus.resources.cpu.request": "cpu_request",
    "prometheus.resources.cpu.limit": "cpu_limit",
    "prometheus.resources.memory.request": "memory_request",
    "prometheus.resources.memory.limit": "memory_limit",
    "prometheus.storageLimit": "storage_limit",
    "controlPlaneNamespace": "control_plane_namespace",
    "image": "image",
    "identityTrustDomain": "trust_domain",
    "clusterDomain": "cluster_domain",
}
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


def _check(field: str, value: str) -> None:
    key = next(k for k, v in _KEYS.items() if v == field)
    if field in ("scrape_interval", "retention") and not _DURATION.match(value):
        raise ConfigError(f"--set {key}={value}: not a Prometheus duration", hint="e.g. 10s, 6h")
    if field.startswith(("cpu_", "memory_", "storage_")) and not _QUANTITY.match(value):
        raise ConfigError(f"--set {key}={value}: not a resource quantity", hint="e.g. 500m, 384Mi")
    if field == "prometheus_url" and value and not _URL.match(value):
        raise ConfigError(f"--set {key}={value}: not an http(s) URL", hint="e.g. http://prom:9090")
    if field in ("prometheus_image", "control_plane_namespace", "image", "trust_domain",
                 "cluster_domain") and not value:  # fmt: skip
        raise ConfigError(f"--set {key}= needs a value")


def parse_sets(sets: tuple[str, ...] | list[str], base: VizValues | None = None) -> VizValues:
    values = base or VizValues()
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        if key not in _KEYS:
            raise ConfigError(f"--set {key}: unknown key", hint="known: " + ", ".join(_KEYS))
        _check(_KEYS[key], value)
        values = replace(values, **{_KEYS[key]: value})
    return values


def _meta(v: VizValues, name: str, labels: dict[str, str] | None = None, ns: bool = True) -> Doc:
    meta: Doc = {"name": name}
    if ns:
        meta["namespace"] = v.namespace
    meta["labels"] = {EXTENSION_LABEL[0]: EXTENSION_LABEL[1], **(labels or {})}
    return meta


def _values_doc(v: VizValues) -> str:
    data: dict[str, Any] = {
        "prometheusUrl": v.prometheus_url,
        "controlPlaneNamespace": v.control_plane_namespace,
    }
    if not v.prometheus_url:
        data["prometheus"] = {"image": v.prometheus_image, "scrapeInterval": v.scrape_interval}
    return yaml.safe_dump(data, sort_keys=False)


def prometheus_config(v: VizValues) -> Doc:
    return {
        "global": {"scrape_interval": v.scrape_interval, "evaluation_interval": v.scrape_interval},
        "scrape_configs": [
            {"job_name": PROMETHEUS, "static_configs": [{"targets": [f"localhost:{PORT}"]}]},
            kubernetes_proxy_job(v.control_plane_namespace, v.scrape_interval),
            kubernetes_controller_job(v.control_plane_namespace, v.scrape_interval),
        ],
    }


def _prometheus(v: VizValues) -> list[Doc]:
    name = PROMETHEUS
    labels = dict(PROMETHEUS_LABELS)
    container = {
        "name": name,
        "image": v.prometheus_image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/data",
            f"--storage.tsdb.retention.time={v.retention}",
            f"--web.listen-address=:{PORT}",
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": PORT}, "periodSeconds": 10},
        "livenessProbe": {
            "httpGet": {"path": "/-/healthy", "port": PORT},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
        },
        "resources": {
            "requests": {"cpu": v.cpu_request, "memory": v.memory_request},
            "limits": {"cpu": v.cpu_limit, "memory": v.memory_limit},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NOBODY,
            "runAsGroup": NOBODY,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/prometheus", "readOnly": True},
            {"name": "data", "mountPath": "/data"},
        ],
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(v, name, labels)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(v, f"lacewing-viz-{name}", labels, ns=False),
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(v, f"lacewing-viz-{name}", labels, ns=False),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"lacewing-viz-{name}",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": v.namespace}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(v, f"{name}-config", labels),
            "data": {"prometheus.yml": yaml.safe_dump(prometheus_config(v), sort_keys=False)},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(v, name, labels),
            "spec": {
                "type": "ClusterIP",
                "selector": labels,
                "ports": [{"name": "http", "port": PORT, "targetPort": PORT, "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(v, name, labels),
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},  # one TSDB at a time
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {
                        "labels": {EXTENSION_LABEL[0]: EXTENSION_LABEL[1], **labels},
                        "annotations": {"lacewing.io/inject": "disabled"},
                    },
                    "spec": {
                        "serviceAccountName": name,
                        "securityContext": {"fsGroup": NOBODY},
                        "containers": [container],
                        "volumes": [
                            {"name": "config", "configMap": {"name": f"{name}-config"}},
                            {"name": "data", "emptyDir": {"sizeLimit": v.storage_limit}},
                        ],
                    },
                },
            },
        },
    ]


def render_viz(v: VizValues) -> list[Doc]:
    namespace: Doc = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            **_meta(v, v.namespace, ns=False),
            "annotations": {"lacewing.io/inject": "disabled"},
        },
    }
    config: Doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(v, CONFIG_MAP),
        "data": {"values": _values_doc(v)},
    }
    docs = [namespace, config]
    if not v.prometheus_url:
        docs += _prometheus(v)
    return docs + render_components(v)
