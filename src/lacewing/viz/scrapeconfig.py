"""Prometheus scrape configuration for lacewing proxies, shared by Kubernetes and the local runtime.

One relabelling serves both. On Kubernetes the `lacewing-proxy` job discovers pods
(`kubernetes_sd_configs`, role pod) and keeps only the proxy container's `lacewing-admin` port
of pods the injector labelled `lacewing.io/control-plane-ns=<control plane ns>`. The local
runtime has no API server: its supervisor writes a `file_sd_configs` file whose targets carry
the SAME `__meta_kubernetes_*` labels (see `file_sd_targets`), so the same rules apply:

    __meta_kubernetes_namespace                              -> namespace
    __meta_kubernetes_pod_name                               -> pod
    __meta_kubernetes_pod_label_lacewing_io_proxy_job        -> k8s_job (not Prometheus' job)
    __meta_kubernetes_pod_label_lacewing_io_proxy_<kind>     -> <kind>  (deployment, statefulset,
                                                                         daemonset, ...)
    __meta_kubernetes_pod_label_lacewing_io_control_plane_ns -> control_plane_ns
    job                                                      =  lacewing-proxy

as Linkerd's viz Prometheus does, so Linkerd's dashboards' `namespace`/`deployment`/`pod`
selectors carry over. Labels starting with `__` are dropped by Prometheus after relabelling.
Everything here is plain data (dicts), rendered to YAML/JSON by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ADMIN_PORT_NAME",
    "CONTROLLER_JOB",
    "PROXY_CONTAINER",
    "PROXY_JOB",
    "ProxyTarget",
    "file_sd_targets",
    "kubernetes_controller_job",
    "kubernetes_proxy_job",
    "local_config",
    "proxy_relabel_configs",
]

PROXY_JOB = "lacewing-proxy"
CONTROLLER_JOB = "lacewing-controller"
PROXY_CONTAINER = "lacewing-proxy"
ADMIN_PORT_NAME = "lacewing-admin"
_META = "__meta_kubernetes_"
_POD_LABEL = _META + "pod_label_"
_CONTROL_PLANE_NS = _POD_LABEL + "lacewing_io_control_plane_ns"


def proxy_relabel_configs(control_plane_ns: str) -> list[dict[str, Any]]:
    return [
        {
            "source_labels": [
                _META + "pod_container_name",
                _META + "pod_container_port_name",
                _CONTROL_PLANE_NS,
            ],
            "action": "keep",
            "regex": f"^{PROXY_CONTAINER};{ADMIN_PORT_NAME};{control_plane_ns}$",
        },
        {"source_labels": [_META + "namespace"], "action": "replace", "target_label": "namespace"},
        {"source_labels": [_META + "pod_name"], "action": "replace", "target_label": "pod"},
        {
            "source_labels": [_POD_LABEL + "lacewing_io_proxy_job"],
            "action": "replace",
            "target_label": "k8s_job",
        },
        {"action": "labeldrop", "regex": _POD_LABEL + "lacewing_io_proxy_job"},
        {"action": "labelmap", "regex": _POD_LABEL + "lacewing_io_proxy_(.+)"},
        {"action": "labelmap", "regex": _POD_LABEL + "lacewing_io_(control_plane_ns)"},
    ]


def kubernetes_proxy_job(control_plane_ns: str, interval: str) -> dict[str, Any]:
    return {
        "job_name": PROXY_JOB,
        "scrape_interval": interval,
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": proxy_relabel_configs(control_plane_ns),
    }


CONTROLLER_ADMIN_PORT_NAME = "admin-http"


def kubernetes_controller_job(control_plane_ns: str, interval: str) -> dict[str, Any]:
    """The control plane's admin ports (`lacewing.controller.admin`): pods of the control-plane
    namespace with a `lacewing.io/control-plane-component` label and a port `admin-http`."""
    component = _POD_LABEL + "lacewing_io_control_plane_component"
    return {
        "job_name": CONTROLLER_JOB,
        "scrape_interval": interval,
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [control_plane_ns]}}],
        "relabel_configs": [
            {
                "source_labels": [component, _META + "pod_container_port_name"],
                "action": "keep",
                "regex": f"^.+;{CONTROLLER_ADMIN_PORT_NAME}$",
            },
            {"source_labels": [_META + "namespace"], "target_label": "namespace"},
            {"source_labels": [_META + "pod_name"], "target_label": "pod"},
            {"source_labels": [component], "target_label": "component"},
        ],
    }


@dataclass(frozen=True)
class ProxyTarget:
    """A meshed pod of the local runtime, as the Kubernetes pod discovery would describe it."""

    address: str  # ip:admin-port
    namespace: str
    pod: str
    kind: str  # deployment, statefulset, ...
    workload: str


def file_sd_targets(targets: Iterable[ProxyTarget], control_plane_ns: str) -> list[dict[str, Any]]:
    """The `file_sd_configs` document: one entry per proxy, labelled like Kubernetes pod SD."""
    return [
        {
            "targets": [t.address],
            "labels": {
                _META + "namespace": t.namespace,
                _META + "pod_name": t.pod,
                _META + "pod_container_name": PROXY_CONTAINER,
                _META + "pod_container_port_name": ADMIN_PORT_NAME,
                _CONTROL_PLANE_NS: control_plane_ns,
                f"{_POD_LABEL}lacewing_io_proxy_{t.kind}": t.workload,
            },
        }
        for t in sorted(targets, key=lambda t: (t.namespace, t.pod))
    ]


def local_config(
    targets_file: str,
    control_plane_ns: str,
    interval: str,
    controllers_file: str | None = None,
    self_addr: str | None = None,
) -> dict[str, Any]:
    """The whole prometheus.yml of a local cluster: the proxies' job, targets from
    `targets_file`, and with `controllers_file` the control plane's admin ports (job
    `lacewing-controller`, targets labelled `namespace`, `pod`, `component` as written); with
    `self_addr`, Prometheus' own metrics (job `prometheus`, as Linkerd's viz Prometheus
    scrapes itself: its dashboards' "is Prometheus receiving data" panel asks
    `prometheus_ready`)."""  # fmt: skip
    jobs: list[dict[str, Any]] = [
        {
            "job_name": PROXY_JOB,
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "file_sd_configs": [{"files": [targets_file], "refresh_interval": "5s"}],
            "relabel_configs": proxy_relabel_configs(control_plane_ns),
        }
    ]
    if controllers_file is not None:
        jobs.append(
            {
                "job_name": CONTROLLER_JOB,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "file_sd_configs": [{"files": [controllers_file], "refresh_interval": "5s"}],
            }
        )
    if self_addr is not None:
        jobs.append({"job_name": "prometheus", "static_configs": [{"targets": [self_addr]}]})
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": jobs,
    }
