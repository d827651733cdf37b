"""Label and field selectors, parsed once and matched against objects.

Label selectors follow the Kubernetes grammar: comma-separated requirements, each one of
`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists) or `!k` (does not exist).
Field selectors are `path=value`, `path==value` or `path!=value`; as on a real API server only
some fields are selectable, per kind (`SELECTABLE_FIELDS`); any other field is a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.support.kubeapi.errors import ApiError

Matcher = Callable[[dict[str, Any]], bool]

_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
SELECTABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "source",
        "type",
    ),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "Node": ("spec.unschedulable",),
    "ReplicaSet": ("status.replicas",),
    "Job": ("status.successful",),
}

_REQ = re.compile(
    r"""\s*(?:
        (?P<notexists>!\s*(?P<nk>[\w./-]+)) |
        (?P<setk>[\w./-]+)\s+(?P<setop>in|notin)\s*\((?P<vals>[^)]*)\) |
        (?P<k>[\w./-]+)\s*(?P<op>==|!=|=)\s*(?P<v>[\w.-]*) |
        (?P<exists>[\w./-]+)
    )\s*(?:,|$)""",
    re.VERBOSE,
)


def parse_label_selector(text: str | None) -> Matcher:
    """A function telling whether an object's labels satisfy `text` (empty: everything)."""
    if not text:
        return lambda obj: True
    reqs: list[Callable[[dict[str, str]], bool]] = []
    pos = 0
    while pos < len(text):
        m = _REQ.match(text, pos)
        if not m or m.end() == pos:
            raise ApiError.bad_request(
                f'unable to parse requirement: invalid label selector "{text}"'
            )
        pos = m.end()
        reqs.append(_label_requirement(m))
    return lambda obj: all(r(obj.get("metadata", {}).get("labels") or {}) for r in reqs)


def _label_requirement(m: re.Match[str]) -> Callable[[dict[str, str]], bool]:
    if m.group("notexists"):
        key = m.group("nk")
        return lambda labels: key not in labels
    if m.group("setk"):
        key = m.group("setk")
        values = {v.strip() for v in m.group("vals").split(",") if v.strip()}
        if m.group("setop") == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m.group("k"):
        key, value = m.group("k"), m.group("v")
        if m.group("op") == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    key = m.group("exists")
    return lambda labels: key in labels


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string form a field selector compares against (missing fields are "")."""
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(text: str | None, kind: str) -> Matcher:
    """A function telling whether an object's fields satisfy `text`; unknown fields are a 400."""
    if not text:
        return lambda obj: True
    allowed = _COMMON_FIELDS + SELECTABLE_FIELDS.get(kind, ())
    reqs: list[tuple[str, bool, str]] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*([\w.]+)\s*(==|!=|=)\s*(.*?)\s*", part)
        if not m:
            raise ApiError.bad_request(f'invalid field selector: "{part}"')
        path, op, value = m.groups()
        if path not in allowed:
            raise ApiError.bad_request(f"field label not supported: {path}", reason="BadRequest")
        reqs.append((path, op != "!=", value))
    return lambda obj: all((field_value(obj, p) == v) == eq for p, eq, v in reqs)


def match_selector_object(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Whether `labels` satisfy a LabelSelector object (matchLabels and matchExpressions).

    An absent selector matches everything, as in webhook namespaceSelector/objectSelector.
    """
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op)
        if ok is None:
            raise ApiError.bad_request(f'"{op}" is not a valid label selector operator')
        if not ok:
            return False
    return True
