"""The pods a `deploy/NAME` or `pod/NAME` argument names, read from the API server.

How it works: the argument is split at its slash and the kind looked up in a table of the
names kubectl accepts for it (`deploy`, `deployment`, `po`, `pod`, ...). A Pod is fetched by
name; a Deployment's pods are the namespace's pods its `spec.selector` matches (matchLabels
and matchExpressions, with the policy core's selector). Pods come back sorted by name, so a
command that shows one pod for a workload shows the same one every time. A wrong form or a
workload with no pods is a `UsageError` saying what was asked and what to type instead.
"""

from __future__ import annotations

from typing import Any

from lacewing.errors import UsageError

__all__ = ["KIND_ALIASES", "parse_workload", "workload_pods"]

Obj = dict[str, Any]
KIND_ALIASES = {"deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
                "po": "Pod", "pod": "Pod", "pods": "Pod"}  # fmt: skip


def parse_workload(resource: str, example: str) -> tuple[str, str]:
    """`deploy/web` -> ("Deployment", "web"); anything else is a UsageError with `example`."""
    kind, sep, name = resource.partition("/")
    if not sep or kind.lower() not in KIND_ALIASES or not name:
        raise UsageError(
            f"{resource!r} is not deploy/NAME or pod/NAME", hint=f"for example: {example}"
        )
    return KIND_ALIASES[kind.lower()], name


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    from lacewing.core.policy_resources import LabelSelector

    expressions = tuple(
        (str(e.get("key")), str(e.get("operator")), tuple(e.get("values") or ()))
        for e in selector.get("matchExpressions") or []
    )
    match_labels = tuple(sorted((selector.get("matchLabels") or {}).items()))
    return LabelSelector(match_labels, expressions).matches(labels)


def workload_pods(
    cluster: Any, kind: str, name: str, namespace: str, pods: list[Obj] | None = None
) -> list[Obj]:
    """The pods of `kind`/`name` in `namespace`, sorted by name; never empty. `pods`: the
    namespace's pods when the caller has listed them already."""
    if pods is None:
        pods = cluster.list("v1", "Pod", namespace)
    if kind == "Pod":
        chosen = [p for p in pods if p["metadata"]["name"] == name]
        if not chosen:
            raise UsageError(f"pod {namespace}/{name} not found")
    else:
        deployment = cluster.get("apps/v1", "Deployment", name, namespace)
        if deployment is None:
            raise UsageError(f"deployment {namespace}/{name} not found")
        selector = (deployment.get("spec") or {}).get("selector") or {}
        chosen = [p for p in pods if _selects(selector, p["metadata"].get("labels") or {})]
        if not chosen:
            raise UsageError(f"deployment {namespace}/{name} has no pods yet")
    return sorted(chosen, key=lambda p: p["metadata"]["name"])
