"""`check --proxy`: the data-plane categories (Linkerd's names and order).

How it works: `data_plane_categories(namespace)` declares the categories for one run, as data.
The namespace given with `-n` (None: every namespace) is closed over by the check functions,
so the shared `CheckOptions` need not change. Data-plane pods are those labelled
`lacewing.io/control-plane-ns=<control plane namespace>`, the label injection adds; each check
reads them through `Facts` (cached, refreshed when `--wait` retries "proxies are ready"):

- `lacewing-data-plane`: the namespace exists; every proxy container (a regular container or a
  native sidecar) is ready; each pod's `lacewing.io/proxy-version` is not older than the latest
  release (warning) and equals the CLI's (warning).
- `lacewing-identity-data-plane`: the trust anchors each proxy is given (inlined PEM, or a
  reference to the control plane's trust-roots ConfigMap) are the control plane's (warning: a
  mismatch means mTLS to its peers will fail after the next restart of the others).
- `lacewing-data-plane-mtls` (`meshtls.py`): the proxies' outbound connections to meshed peers,
  from their metrics, are all `tls="true"`.
- `lacewing-opaque-ports`: every port a Service marks opaque (`config.lacewing.io/opaque-ports`)
  is, at its target port, opaque in the proxies of the pods it selects (warning: otherwise the
  proxy tries protocol detection on a server-speaks-first protocol).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lacewing.errors import LacewingError
from lacewing.healthcheck.checks import installed
from lacewing.healthcheck.checks.identity import trust_anchors
from lacewing.healthcheck.checks.meshtls import DATA_PLANE_MTLS, mesh_tls_check
from lacewing.healthcheck.checks.versions import LATEST
from lacewing.healthcheck.facts import Facts
from lacewing.healthcheck.model import Category, Check, Outcome
from lacewing.healthcheck.versions import is_older
from lacewing.install import sidecar
from lacewing.tls.pem import parse_certificates

__all__ = [
    "DATA_PLANE",
    "IDENTITY_DATA_PLANE",
    "OPAQUE_PORTS",
    "OPAQUE_PORTS_ANNOTATION",
    "data_plane_categories",
    "data_plane_pods",
]

Obj = dict[str, Any]
DATA_PLANE = "lacewing-data-plane"
IDENTITY_DATA_PLANE = "lacewing-identity-data-plane"
OPAQUE_PORTS = "lacewing-opaque-ports"
OPAQUE_PORTS_ANNOTATION = "config.lacewing.io/opaque-ports"
_OPAQUE_ENV = "LACEWING_PROXY_OPAQUE_PORTS"
_ANCHORS_ENV = "LACEWING_IDENTITY_TRUST_ANCHORS"
_UPGRADE_DP = "restart the workloads to get the current proxy: kubectl rollout restart -n NS deploy"


def _name(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '?')}"


def data_plane_pods(facts: Facts, namespace: str | None) -> list[Obj]:
    cp = facts.options.namespace
    return facts.list("v1", "Pod", namespace, f"{sidecar.CONTROL_PLANE_NS_LABEL}={cp}")


def _proxy_container(pod: Obj) -> Obj | None:
    spec = pod.get("spec") or {}
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if container.get("name") == sidecar.PROXY_CONTAINER_NAME:
                return dict(container)
    return None


def _env(container: Obj, name: str) -> Obj | None:
    return next((e for e in container.get("env") or [] if e.get("name") == name), None)


def _pods_or_fail(facts: Facts, namespace: str | None) -> list[Obj]:
    pods = data_plane_pods(facts, namespace)
    if not pods:
        where = f'namespace "{namespace}"' if namespace else "any namespace"
        raise LacewingError(
            f'no "{sidecar.PROXY_CONTAINER_NAME}" containers found in {where}',
            hint="mesh a workload: kubectl annotate ns NS lacewing.io/inject=enabled, then "
            "kubectl rollout restart -n NS deploy",
        )
    return pods


def namespace_exists(namespace: str | None) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        if namespace is None:
            return Outcome.skip("no namespace given")
        if facts.get("v1", "Namespace", namespace) is None:
            return Outcome.fail(f'the "{namespace}" namespace does not exist')
        return Outcome.ok()

    return check


def proxies_ready(namespace: str | None) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        problems = []
        pods = _pods_or_fail(facts, namespace)
        stuck = [line for pod in pods for line in installed.stuck_containers(pod)]
        if stuck:  # will not heal: fail now rather than at the end of --wait
            return Outcome.give_up("\n".join(stuck), hint=installed.stuck_hint(stuck))
        for pod in pods:
            status = pod.get("status") or {}
            statuses = [
                *(status.get("containerStatuses") or []),
                *(status.get("initContainerStatuses") or []),
            ]
            proxy = next(
                (s for s in statuses if s.get("name") == sidecar.PROXY_CONTAINER_NAME), None
            )
            if proxy is None or not proxy.get("ready"):
                problems.append(
                    f"the {sidecar.PROXY_CONTAINER_NAME} container of pod {_name(pod)} is not ready"
                )
        return Outcome.fail("\n".join(problems)) if problems else Outcome.ok()

    return check


def _versions(facts: Facts, namespace: str | None) -> dict[str, str]:
    return {
        _name(pod): (pod.get("metadata", {}).get("labels") or {}).get(
            sidecar.PROXY_VERSION_LABEL, "unknown"
        )
        for pod in _pods_or_fail(facts, namespace)
    }


def up_to_date(namespace: str | None) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        latest = facts.latest_version()
        old = [
            f"{p} ({v})"
            for p, v in sorted(_versions(facts, namespace).items())
            if is_older(v, latest)
        ]
        if old:
            return Outcome.fail(f"proxies older than {latest}: {', '.join(old)}")
        return Outcome.ok()

    return check


def match_cli(namespace: str | None) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        cli = facts.options.cli_version
        other = [f"{p} ({v})" for p, v in sorted(_versions(facts, namespace).items()) if v != cli]
        if other:
            return Outcome.fail(f"proxies not running cli version {cli}: {', '.join(other)}")
        return Outcome.ok()

    return check


def _control_plane_anchors(facts: Facts) -> set[bytes]:
    # The same (cached) read as the lacewing-identity checks: one GET per run, one message.
    return {c.tbs_certificate_bytes for c in trust_anchors(facts)}


def trust_anchors_match(namespace: str | None) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        expected = _control_plane_anchors(facts)
        cp = facts.options.namespace
        wrong = []
        for pod in _pods_or_fail(facts, namespace):
            env = _env(_proxy_container(pod) or {}, _ANCHORS_ENV)
            ref = ((env or {}).get("valueFrom") or {}).get("configMapKeyRef") or {}
            pod_ns = (pod.get("metadata") or {}).get("namespace")
            if ref.get("name") == sidecar.TRUST_ROOTS_CONFIG_MAP and pod_ns == cp:
                continue  # reads the control plane's own ConfigMap
            try:
                given = parse_certificates(str((env or {}).get("value", "")).encode(), "anchors")
            except LacewingError:
                given = []
            if {c.tbs_certificate_bytes for c in given} != expected:
                wrong.append(_name(pod))
        if wrong:
            return Outcome.fail(
                "proxies' trust anchors differ from the control plane's: " + ", ".join(wrong)
            )
        return Outcome.ok()

    return check


def _ports(text: str) -> set[int]:
    ports: set[int] = set()
    for item in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = item.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            ports.update(range(int(low), int(high or low) + 1))
    return ports


def _selects(service: Obj, pod: Obj) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _target(port: Obj, pod: Obj) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    for container in (pod.get("spec") or {}).get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") == target:
                return int(p.get("containerPort", 0)) or None
    return int(str(target)) if str(target).isdigit() else None


def opaque_ports_annotated(namespace: str | None) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        problems = []
        pods = data_plane_pods(facts, namespace)
        for service in facts.list("v1", "Service", namespace):
            annotations = (service.get("metadata") or {}).get("annotations") or {}
            opaque = _ports(str(annotations.get(OPAQUE_PORTS_ANNOTATION, "")))
            if not opaque:
                continue
            svc_ns = (service.get("metadata") or {}).get("namespace")
            for pod in pods:
                if (pod.get("metadata") or {}).get("namespace") != svc_ns or not _selects(
                    service, pod
                ):
                    continue
                env = _env(_proxy_container(pod) or {}, _OPAQUE_ENV) or {}
                pod_opaque = _ports(str(env.get("value", "")))
                for port in (service.get("spec") or {}).get("ports") or []:
                    target = _target(port, pod)
                    if (
                        port.get("port") in opaque
                        and target is not None
                        and target not in pod_opaque
                    ):
                        problems.append(
                            f"service {_name(service)} expects target port {target} of pod "
                            f"{_name(pod)} to be opaque"
                        )
        return Outcome.fail("\n".join(problems)) if problems else Outcome.ok()

    return check


def data_plane_categories(namespace: str | None) -> tuple[Category[Facts], ...]:
    """The `check --proxy` categories for `-n namespace` (None: all namespaces)."""
    return (
        Category(
            DATA_PLANE,
            (
                Check(
                    "data plane namespace exists",
                    "create it, or pass the right namespace with -n",
                    namespace_exists(namespace),
                    fatal=True,
                ),
                Check(
                    "data plane proxies are ready",
                    "kubectl describe pod POD -n NS; kubectl logs POD -n NS -c lacewing-proxy",
                    proxies_ready(namespace),
                    fatal=True,
                    retry_deadline=True,
                ),
                Check(
                    "data plane is up-to-date",
                    _UPGRADE_DP,
                    up_to_date(namespace),
                    warning=True,
                    tags=frozenset({LATEST}),
                ),
                Check(
                    "data plane and cli versions match",
                    _UPGRADE_DP,
                    match_cli(namespace),
                    warning=True,
                ),
            ),
            needs=("lacewing-existence",),
        ),
        Category(
            IDENTITY_DATA_PLANE,
            (
                Check(
                    "data plane proxies certificate match CA",
                    "restart the proxies so they get the current trust anchors: "
                    "kubectl rollout restart -n NS deploy",
                    trust_anchors_match(namespace),
                    warning=True,
                ),
            ),
            needs=(DATA_PLANE,),
        ),
        Category(DATA_PLANE_MTLS, (mesh_tls_check(namespace),), needs=(DATA_PLANE,)),
        Category(
            OPAQUE_PORTS,
            (
                Check(
                    "opaque ports are properly annotated",
                    "annotate the pods (their workload's template) with the same "
                    "config.lacewing.io/opaque-ports as the Service, then restart them",
                    opaque_ports_annotated(namespace),
                    warning=True,
                ),
            ),
            needs=(DATA_PLANE,),
        ),
    )
