"""The proxy injector's decision for one pod: a JSON patch to apply, or why it is left alone.

How it works:

- `decide(pod, namespace, values)` first walks `SKIP_RULES`, a table of (reason, test) rows in
  order: pods that did not ask (no `lacewing.io/inject: enabled` on the pod or its namespace)
  or opted out, then pods the mesh must never touch (host network, `kube-system`, the control
  plane's own namespace) and pods that already have a proxy. The first test that returns a
  detail wins; the pod then only gets the event-like `lacewing.io/inject-skipped` annotation.
- Otherwise the pod's values are the install values overlaid with its configuration
  annotations (`config.pod_values`), and the sidecar is `lacewing.install.sidecar`'s, exactly
  what `install` gives the control plane's own pods for the same values. Only its placement
  is decided here: `lacewing-init` first among the init containers, then either the proxy first
  among the containers or, as a native sidecar, the proxy right after `lacewing-init` with
  `restartPolicy: Always` (so Jobs finish). Outside the control plane's namespace the trust
  anchors cannot come from its ConfigMap, so the PEM recorded in the install values is inlined.
- A Service being created inherits its namespace's opaque-ports annotation (`service_ops`).
- The patch is a list of RFC 6902 `add` operations (data), which the webhook returns and
  `apply_ops` applies for `lacewing inject --manual`: one code path for both.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lacewing.controller.injector.config import (
    CONFIG_PREFIX,
    SKIPPED_ANNOTATION,
    config_annotations,
    inject_setting,
    native_sidecar,
    pod_values,
)
from lacewing.errors import ConfigError, UsageError
from lacewing.install import sidecar
from lacewing.install.values import Values

__all__ = [
    "INJECTED_ANNOTATIONS",
    "SKIP_RULES",
    "Decision",
    "PodInput",
    "apply_ops",
    "decide",
    "escape",
    "is_injected",
    "service_ops",
    "workload_labels",
]

Obj = dict[str, Any]
Op = dict[str, Any]

WORKLOAD_NS_LABEL = "lacewing.io/workload-ns"
WORKLOAD_LABEL_PREFIX = "lacewing.io/proxy-"  # + kind: lacewing.io/proxy-deployment=web
INJECTED_ANNOTATIONS = (sidecar.PROXY_VERSION_LABEL,)
_NEVER = ("kube-system",)


@dataclass(frozen=True)
class PodInput:
    """Everything a decision depends on (a pod, its namespace, the install values, flags)."""

    pod: Obj
    namespace: Obj | None
    values: Values
    native_sidecar_default: bool = False
    explicit: bool = False  # `inject --manual`: the user asked, no annotation needed
    workload: tuple[str, str] | None = None  # (kind, name) when known, as for `inject --manual`

    @property
    def meta(self) -> Obj:
        meta = self.pod.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def spec(self) -> Obj:
        spec = self.pod.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def namespace_name(self) -> str:
        if self.namespace is not None:
            return str((self.namespace.get("metadata") or {}).get("name", ""))
        return str(self.meta.get("namespace") or "")


@dataclass(frozen=True)
class Decision:
    """`injected` with the patch that does it, or a skip `reason` and its `detail`."""

    injected: bool
    reason: str
    detail: str
    ops: list[Op] = field(default_factory=list)

    @property
    def message(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


def is_injected(spec: Mapping[str, Any]) -> bool:
    names = {
        c.get("name")
        for key in ("containers", "initContainers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
    }
    return sidecar.PROXY_CONTAINER_NAME in names


def _asked(p: PodInput) -> str | None:
    if p.explicit:
        return None
    pod = inject_setting(p.meta)
    ns = inject_setting((p.namespace or {}).get("metadata"))
    if pod == "disabled" or (pod is None and ns == "disabled"):
        where = "pod" if pod == "disabled" else "namespace"
        return f"the {where} is annotated lacewing.io/inject: disabled"
    if pod is None and ns is None:
        return "neither the pod nor its namespace is annotated lacewing.io/inject: enabled"
    return None


def _host_network(p: PodInput) -> str | None:
    return (
        "the pod uses the node's network (hostNetwork: true)" if p.spec.get("hostNetwork") else None
    )


def _system_namespace(p: PodInput) -> str | None:
    ns = p.namespace_name
    return f"pods in {ns} are never injected" if ns in _NEVER else None


def _control_plane(p: PodInput) -> str | None:
    ns = p.namespace_name
    if ns and ns == p.values.namespace:
        return f"{ns} is the control plane's namespace; install already meshes its pods"
    return None


def _already(p: PodInput) -> str | None:
    if is_injected(p.spec):
        return f"the pod already has a {sidecar.PROXY_CONTAINER_NAME} container"
    return None


# In order; the first rule whose test returns a detail decides the pod's skip reason.
SKIP_RULES: tuple[tuple[str, Callable[[PodInput], str | None]], ...] = (
    ("injection-not-requested", _asked),
    ("host-network", _host_network),
    ("system-namespace", _system_namespace),
    ("control-plane-namespace", _control_plane),
    ("already-injected", _already),
)


def escape(key: str) -> str:
    """A map key as a JSON Pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _add_entries(ops: list[Op], parent: Obj, path: str, entries: Mapping[str, str]) -> None:
    if not entries:
        return
    if not isinstance(parent.get(path.rsplit("/", 1)[1]), dict):
        ops.append({"op": "add", "path": path, "value": dict(entries)})
        return
    for key, value in entries.items():
        ops.append({"op": "add", "path": f"{path}/{escape(key)}", "value": value})


def workload_labels(p: PodInput) -> dict[str, str]:
    """`lacewing.io/workload-ns` and `lacewing.io/proxy-<kind>: <name>` of the pod's owner."""
    labels = {WORKLOAD_NS_LABEL: p.namespace_name} if p.namespace_name else {}
    kind_name = p.workload
    if kind_name is None:
        owner = next(
            (
                o
                for o in p.meta.get("ownerReferences") or []
                if isinstance(o, dict) and o.get("controller")
            ),
            None,
        )
        if owner is not None:
            kind, name = str(owner.get("kind", "")), str(owner.get("name", ""))
            template_hash = (p.meta.get("labels") or {}).get("pod-template-hash")
            if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
                kind, name = "Deployment", name[: -len(template_hash) - 1]
            kind_name = (kind, name)
    if kind_name and kind_name[0] and kind_name[1]:
        labels[WORKLOAD_LABEL_PREFIX + kind_name[0].lower()] = kind_name[1]
    return labels


def container_ports(spec: Obj) -> str:
    """`8080,9090`: the TCP ports the pod's containers declare (the proxy prefetches their
    policy), in order, once each."""
    ports: list[str] = []
    for container in spec.get("containers") or []:
        for port in (container.get("ports") or []) if isinstance(container, dict) else []:
            number = port.get("containerPort") if isinstance(port, dict) else None
            tcp = isinstance(port, dict) and port.get("protocol", "TCP") == "TCP"
            if isinstance(number, int) and 0 < number < 65536 and tcp and str(number) not in ports:
                ports.append(str(number))
    return ",".join(ports)


def _proxy(values: Values, namespace: str, spec: Obj) -> Obj:
    container = sidecar.proxy_container(values, inbound_ports=container_ports(spec))
    pem = values.identity.trust_anchors_pem
    if pem and namespace != values.namespace:
        for env in container["env"]:
            if "configMapKeyRef" in (env.get("valueFrom") or {}):
                env.pop("valueFrom")
                env["value"] = pem
    return container


def _inject_ops(
    p: PodInput, values: Values, native: bool, inherited: Mapping[str, str]
) -> list[Op]:
    meta, spec = p.meta, p.spec
    ops: list[Op] = []
    if "metadata" not in p.pod or not isinstance(p.pod["metadata"], dict):
        ops.append({"op": "add", "path": "/metadata", "value": {}})
    annotations = {**inherited, sidecar.PROXY_VERSION_LABEL: values.image.tag}
    _add_entries(ops, meta, "/metadata/annotations", annotations)
    labels = {**sidecar.proxy_pod_labels(values), **workload_labels(p)}
    _add_entries(ops, meta, "/metadata/labels", labels)

    init = sidecar.proxy_init_container(values)
    proxy = _proxy(values, p.namespace_name, spec)
    firsts = [init]
    if native:
        firsts.append({**proxy, "restartPolicy": "Always"})
    if spec.get("initContainers"):
        for index, container in enumerate(firsts):
            ops.append({"op": "add", "path": f"/spec/initContainers/{index}", "value": container})
    else:
        ops.append({"op": "add", "path": "/spec/initContainers", "value": firsts})
    if not native:
        ops.append({"op": "add", "path": "/spec/containers/0", "value": proxy})
    volumes = sidecar.proxy_volumes(values)
    if spec.get("volumes"):
        ops += [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in volumes]
    else:
        ops.append({"op": "add", "path": "/spec/volumes", "value": volumes})
    return ops


def _skip(p: PodInput, reason: str, detail: str) -> Decision:
    ops: list[Op] = []
    if "metadata" not in p.pod or not isinstance(p.pod["metadata"], dict):
        ops.append({"op": "add", "path": "/metadata", "value": {}})
    _add_entries(ops, p.meta, "/metadata/annotations", {SKIPPED_ANNOTATION: f"{reason}: {detail}"})
    return Decision(False, reason, detail, ops)


def decide(p: PodInput) -> Decision:
    """Inject or skip `p.pod` (see the module docstring); never raises for a bad annotation.

    A configuration annotation that does not parse is a skip with reason `invalid-annotation`:
    a pod is never blocked, and never started with a proxy configured other than asked.
    """
    if not isinstance(p.spec.get("containers"), list) or not p.spec["containers"]:
        raise UsageError("the pod has no spec.containers", hint="this is not a valid Pod")
    try:
        for reason, test in SKIP_RULES:
            detail = test(p)
            if detail is not None:
                return _skip(p, reason, detail)
        ns_meta = (p.namespace or {}).get("metadata")
        effective = config_annotations(ns_meta, p.meta)
        values = pod_values(p.values, effective)
        native = native_sidecar(effective, p.native_sidecar_default)
    except ConfigError as exc:
        return _skip(p, "invalid-annotation", exc.message)
    own = {str(k) for k in (p.meta.get("annotations") or {})}
    inherited = {k: v for k, v in effective.items() if k not in own}
    return Decision(True, "injected", "", _inject_ops(p, values, native, inherited))


def service_ops(service: Obj, namespace: Obj | None) -> list[Op]:
    """A Service inherits its namespace's `config.lacewing.io/opaque-ports` unless it has one.

    Clients' proxies learn which ports are opaque from the Service, so the annotation that
    makes a namespace's pods opaque must reach its Services too (as Linkerd's injector does).
    """
    key = CONFIG_PREFIX + "opaque-ports"
    inherited = ((namespace or {}).get("metadata") or {}).get("annotations") or {}
    meta = service.get("metadata") if isinstance(service.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    if key not in inherited or key in (meta.get("annotations") or {}):
        return []
    ops: list[Op] = []
    if "metadata" not in service:
        ops.append({"op": "add", "path": "/metadata", "value": {}})
    _add_entries(ops, meta, "/metadata/annotations", {key: str(inherited[key])})
    return ops


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def apply_ops(obj: Obj, ops: list[Op]) -> Obj:
    """A deep copy of `obj` with the `add` operations of `ops` applied (RFC 6902 semantics)."""
    result = copy.deepcopy(obj)
    for op in ops:
        if op.get("op") != "add":
            raise ValueError(f"only add operations are produced here, not {op.get('op')!r}")
        *parents, last = [_unescape(t) for t in str(op["path"]).split("/")[1:]]
        node: Any = result
        for token in parents:
            node = node[int(token)] if isinstance(node, list) else node[token]
        value = copy.deepcopy(op["value"])
        if isinstance(node, list):
            if last == "-":
                node.append(value)
            else:
                node.insert(int(last), value)
        else:
            node[last] = value
    return result
