"""`lacewing inject` / `uninject` on manifests: find each pod template and change it.

How it works: `POD_TEMPLATES` maps each supported kind to the path of its pod template
(a Pod is its own template). `transform(docs, change)` walks documents in order, descending
into `v1 List` items, and calls `change(kind, obj, template)` on each supported object; every
other object passes through untouched with a `Note` saying so. The changes are:

- `annotate`: `lacewing.io/inject: enabled` on the template (the webhook does the rest),
  unless the webhook's own rules would skip its pods (host network, `kube-system`, the
  control plane's namespace, a proxy already there): then the object is left as it is;
- `inject_manual`: the webhook's own patch (`patch.decide` + `patch.apply_ops`) applied to the
  template, for clusters without the webhook;
- `uninject`: the reverse of both: the annotation, the proxy and init containers, their
  volumes, and the labels and annotations injection adds. Configuration annotations the user
  wrote stay.

Objects are plain dicts, changed in place and returned, so key order (and with it the order
of fields in the output) is the input's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lacewing.controller.injector.config import INJECT_ANNOTATION, SKIPPED_ANNOTATION
from lacewing.controller.injector.patch import (
    WORKLOAD_LABEL_PREFIX,
    WORKLOAD_NS_LABEL,
    Decision,
    PodInput,
    apply_ops,
    decide,
)
from lacewing.errors import UsageError
from lacewing.install import sidecar
from lacewing.install.values import Values

__all__ = [
    "POD_TEMPLATES",
    "Change",
    "Note",
    "annotate",
    "inject_manual",
    "pod_template",
    "transform",
    "uninject",
]

Obj = dict[str, Any]

POD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Pod": (),
}


@dataclass(frozen=True)
class Note:
    """One line for stderr about one object: `deployment "web" injected`."""

    kind: str
    name: str
    text: str

    def __str__(self) -> str:
        return f'{self.kind.lower() or "document"} "{self.name}" {self.text}'


# (kind, object, its pod template) -> what happened to it
Change = Callable[[str, Obj, Obj], str]


def pod_template(obj: Obj) -> Obj | None:
    """The pod template of a supported object; None for other kinds or a missing template."""
    path = POD_TEMPLATES.get(str(obj.get("kind", "")))
    if path is None:
        return None
    node = obj
    for key in path:
        child = node.get(key)
        if not isinstance(child, dict):
            return None
        node = child
    return node


def _meta(template: Obj, key: str) -> dict[str, Any]:
    meta = template.setdefault("metadata", {})
    if not isinstance(meta, dict):
        meta = template["metadata"] = {}
    entries = meta.get(key)
    if not isinstance(entries, dict):
        entries = meta[key] = {}
    return entries


def _decision(values: Values, native: bool, kind: str, obj: Obj, template: Obj) -> Decision:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return decide(
        PodInput(
            pod=template,
            namespace={"metadata": {"name": ns}} if ns else None,
            values=values,
            native_sidecar_default=native,
            explicit=True,
            workload=(kind, str(meta.get("name", ""))),
        )
    )


def annotate(values: Values) -> Change:
    """The default change: the annotation, unless the webhook would skip the pods anyway."""

    def change(kind: str, obj: Obj, template: Obj) -> str:
        decision = _decision(values, False, kind, obj, template)
        if not decision.injected:
            return f"skipped ({decision.message})"
        _meta(template, "annotations")[INJECT_ANNOTATION] = "enabled"
        return "injected"

    return change


def inject_manual(values: Values, native_sidecar: bool = False) -> Change:
    """The `--manual` change: the webhook's patch, decided with the object's own namespace."""

    def change(kind: str, obj: Obj, template: Obj) -> str:
        decision = _decision(values, native_sidecar, kind, obj, template)
        if not decision.injected:
            return f"skipped ({decision.message})"
        patched = apply_ops(template, decision.ops)
        template.clear()
        template.update(patched)
        return "injected"

    return change


_SIDECAR_CONTAINERS = {sidecar.PROXY_CONTAINER_NAME, sidecar.INIT_CONTAINER_NAME}
_SIDECAR_VOLUMES = {v["name"] for v in sidecar.proxy_volumes(Values())}
_ANNOTATIONS = {INJECT_ANNOTATION, SKIPPED_ANNOTATION, sidecar.PROXY_VERSION_LABEL}
_LABELS = {sidecar.PROXY_VERSION_LABEL, sidecar.CONTROL_PLANE_NS_LABEL, WORKLOAD_NS_LABEL}


def _drop(container: dict[str, Any], key: str, keep: Callable[[Any], bool]) -> bool:
    items = container.get(key)
    if not isinstance(items, list | dict):
        return False
    kept: list[Any] | dict[str, Any]
    if isinstance(items, list):
        kept = [item for item in items if keep(item)]
    else:
        kept = {k: v for k, v in items.items() if keep(k)}
    if len(kept) == len(items):
        return False
    if kept:
        container[key] = kept
    else:
        del container[key]
    return True


def uninject(kind: str, obj: Obj, template: Obj) -> str:
    spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
    assert isinstance(spec, dict) and isinstance(meta, dict)

    def not_sidecar(item: Any) -> bool:
        return not (isinstance(item, dict) and item.get("name") in _SIDECAR_CONTAINERS)

    def not_volume(item: Any) -> bool:
        return not (isinstance(item, dict) and item.get("name") in _SIDECAR_VOLUMES)

    changed = [
        _drop(spec, "containers", not_sidecar),
        _drop(spec, "initContainers", not_sidecar),
        _drop(spec, "volumes", not_volume),
        _drop(meta, "annotations", lambda k: k not in _ANNOTATIONS),
        _drop(
            meta, "labels", lambda k: k not in _LABELS and not k.startswith(WORKLOAD_LABEL_PREFIX)
        ),
    ]
    if "metadata" in template and not template["metadata"]:
        del template["metadata"]
    return "uninjected" if any(changed) else "unchanged (not injected)"


def transform(docs: list[Any], change: Change) -> tuple[list[Any], list[Note]]:
    """`docs` with `change` applied to every supported object, and a note per object."""
    notes: list[Note] = []

    def visit(doc: Any) -> Any:
        if not isinstance(doc, dict):
            notes.append(Note("", "", "left unchanged: not a Kubernetes object"))
            return doc
        kind = str(doc.get("kind", ""))
        name = str((doc.get("metadata") or {}).get("name", ""))
        if kind.endswith("List") and isinstance(doc.get("items"), list):
            doc["items"] = [visit(item) for item in doc["items"]]
            return doc
        if kind not in POD_TEMPLATES:
            notes.append(Note(kind, name, f"left unchanged: kind {kind or '(none)'} has no pods"))
            return doc
        template = pod_template(doc)
        if template is None:
            notes.append(Note(kind, name, "left unchanged: it has no pod template"))
            return doc
        try:
            notes.append(Note(kind, name, change(kind, doc, template)))
        except UsageError as exc:
            notes.append(Note(kind, name, f"left unchanged: {exc.message}"))
        return doc

    return [visit(doc) for doc in docs], notes
