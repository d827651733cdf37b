"""`lacewing-data-plane-mtls`: is the data plane's traffic to meshed peers mutual TLS?

Each data-plane proxy's `/metrics` is read through the API server (`pods/<pod>:<admin>/proxy/
metrics`, as `kubectl get --raw` would), and its outbound connections are taken from
`tcp_open_total{direction="outbound", peer="dst", target_addr, tls}`. A target is a *meshed
peer* when its address is a meshed pod's IP (any namespace, `lacewing.io/control-plane-ns`
label) at a port that pod's proxy does not skip inbound (its `skip-inbound-ports` annotation,
its admin and tap ports), or a Service cluster IP whose selected pods are all meshed. Any
connection to a meshed peer counted with a `tls` other than `true` is reported with its pod,
peer and count: that proxy does not know its peer's identity (destination unused, or no
identity announced), so the traffic crossed the network in plaintext. A proxy whose metrics
cannot be read fails the check too (nothing can be said about it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lacewing.errors import LacewingError
from lacewing.healthcheck.facts import Facts
from lacewing.healthcheck.model import Check, Outcome
from lacewing.install import sidecar
from lacewing.viz.promtext import parse

__all__ = ["DATA_PLANE_MTLS", "mesh_tls_check", "meshed_peers", "outbound_mtls"]

Obj = dict[str, Any]
ADMIN_PORT = 4191
DATA_PLANE_MTLS = "lacewing-data-plane-mtls"
_SKIP_ANNOTATION = sidecar.SKIP_INBOUND_ANNOTATION


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _proxy_ports(pod: Obj) -> dict[str, int]:
    for key in ("containers", "initContainers"):
        for container in (pod.get("spec") or {}).get(key) or []:
            if container.get("name") == sidecar.PROXY_CONTAINER_NAME:
                return {
                    str(p.get("name")): int(p["containerPort"])
                    for p in container.get("ports") or []
                    if isinstance(p.get("containerPort"), int)
                }
    return {}


def _skipped(pod: Obj) -> set[int]:
    ports = _proxy_ports(pod)
    skipped = {ports[n] for n in (sidecar.ADMIN_PORT_NAME, sidecar.TAP_PORT_NAME) if n in ports}
    text = str((_meta(pod).get("annotations") or {}).get(_SKIP_ANNOTATION, ""))
    for item in filter(None, (part.strip() for part in text.split(","))):
        low, _, high = item.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            skipped.update(range(int(low), int(high or low) + 1))
    return skipped


def _name(obj: Obj) -> str:
    meta = _meta(obj)
    return f"{meta.get('namespace', '')}/{meta.get('name', '?')}"


def meshed_peers(facts: Facts) -> Callable[[str, int], str | None]:
    """`(ip, port) -> "pod NS/NAME"` (or "service NS/NAME") when that target is meshed."""
    label = f"{sidecar.CONTROL_PLANE_NS_LABEL}={facts.options.namespace}"
    meshed = facts.list("v1", "Pod", None, label)
    pods: dict[str, Obj] = {}
    for pod in meshed:
        ip = (pod.get("status") or {}).get("podIP")
        if ip:
            pods[str(ip)] = pod
    services: dict[str, str] = {}
    all_pods = facts.list("v1", "Pod")
    for service in facts.list("v1", "Service"):
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        ip = spec.get("clusterIP")
        if not selector or not ip or ip == "None":
            continue
        ns = _meta(service).get("namespace")
        selected = [
            p
            for p in all_pods
            if _meta(p).get("namespace") == ns
            and all((_meta(p).get("labels") or {}).get(k) == v for k, v in selector.items())
        ]
        if selected and all(p in meshed for p in selected):
            services[str(ip)] = f"service {_name(service)}"

    def lookup(ip: str, port: int) -> str | None:
        pod = pods.get(ip)
        if pod is not None:
            return None if port in _skipped(pod) else f"pod {_name(pod)}"
        return services.get(ip)

    return lookup


def _split(target: str) -> tuple[str, int] | None:
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def outbound_mtls(namespace: str | None) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        label = f"{sidecar.CONTROL_PLANE_NS_LABEL}={facts.options.namespace}"
        clients = facts.list("v1", "Pod", namespace, label)
        if not clients:
            return Outcome.skip("no data-plane pods")
        peer_of = meshed_peers(facts)
        problems: list[str] = []
        for pod in clients:
            meta = _meta(pod)
            admin = _proxy_ports(pod).get(sidecar.ADMIN_PORT_NAME, ADMIN_PORT)
            try:
                text = facts.pod_text(meta.get("namespace", ""), meta.get("name", ""), admin,
                                      "metrics")  # fmt: skip
            except LacewingError as exc:
                problems.append(f"pod {_name(pod)}: cannot read its proxy's metrics: {exc}")
                continue
            for s in parse(text):
                labels = s.labels
                if (s.name, labels.get("direction"), labels.get("peer")) != (
                    "tcp_open_total", "outbound", "dst",
                ) or s.value <= 0:  # fmt: skip
                    continue
                target = _split(labels.get("target_addr", ""))
                if target is None or labels.get("tls") == "true":
                    continue
                peer = peer_of(*target)
                if peer is not None:
                    reason = labels.get("no_tls_reason")
                    problems.append(
                        f"pod {_name(pod)}: {int(s.value)} connection(s) to meshed {peer}"
                        f" ({labels.get('target_addr')}) with tls={labels.get('tls', '')}"
                        + (f" ({reason})" if reason else "")
                    )
        return Outcome.fail("\n".join(problems)) if problems else Outcome.ok()

    return check


def mesh_tls_check(namespace: str | None) -> Check[Facts]:
    return Check(
        "data plane traffic to meshed peers is mTLS",
        "the client's proxy did not know its peer's identity: is LACEWING_PROXY_DESTINATION_ADDR"
        " set in its pod, and does `lacewing check` pass (destination ready, its proxy"
        " certified)? Restart the client after fixing: kubectl rollout restart -n NS deploy",
        outbound_mtls(namespace),
    )
