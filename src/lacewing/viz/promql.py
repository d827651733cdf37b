"""`viz stat` as PromQL: which labels select and group a request, and the golden-metric queries.

The same queries Linkerd's viz metrics API sends (so its numbers mean the same):

    requests   sum(increase(response_total{L}[W])) by (G, classification, tls)
    latency    histogram_quantile(q, sum(irate(response_latency_ms_bucket{L}[W])) by (le, G))
    tcp        sum(tcp_open_connections{L, peer="src"}) by (G)
    bytes      sum(increase(tcp_read_bytes_total{L, peer="src"}[W])) by (G)   (and write)

L (the selector) and G (the group-by) depend on the resource and on `--from` / `--to`:

    stat KIND[/NAME] -n NS            inbound   L: namespace=NS, KIND=NAME
                                                G: namespace, KIND
    stat KIND -n NS --to TK/T         outbound  L: namespace=NS, dst_namespace=TNS, dst_TK=T
         [--to-namespace TNS]                   G: namespace, KIND
    stat KIND[/NAME] -n NS --from FK/F
         [--from-namespace FNS]       outbound  L: namespace=FNS, FK=F, dst_namespace=NS,
                                                   dst_KIND=NAME
                                                G: dst_namespace, dst_KIND
    stat svc[/NAME] -n NS             outbound  L: dst_namespace=NS, dst_service=NAME
                                                G: dst_namespace, dst_service

Services have no inbound metrics (a proxy serves a pod, not a Service), so they are seen from
the clients' outbound side, as in Linkerd. `authority` groups inbound traffic by the request's
`:authority`. `namespace` groups by namespace only. TCP figures exist for inbound queries only
(an outbound connection is not to one resource). Label values are escaped for PromQL strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from lacewing.errors import UsageError

__all__ = [
    "KINDS",
    "Query",
    "Resource",
    "StatRequest",
    "build_queries",
    "parse_resource",
]

# every spelling kubectl and Linkerd accept -> the metric label of that kind
KINDS: dict[str, str] = {
    **dict.fromkeys(("deploy", "deployment", "deployments"), "deployment"),
    **dict.fromkeys(("sts", "statefulset", "statefulsets"), "statefulset"),
    **dict.fromkeys(("ds", "daemonset", "daemonsets"), "daemonset"),
    **dict.fromkeys(("po", "pod", "pods"), "pod"),
    **dict.fromkeys(("ns", "namespace", "namespaces"), "namespace"),
    **dict.fromkeys(("svc", "service", "services"), "service"),
    **dict.fromkeys(("au", "authority", "authorities"), "authority"),
}
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Resource:
    kind: str  # a KINDS value
    name: str | None = None


def parse_resource(text: str, flag: str = "RESOURCE") -> Resource:
    kind, _, name = text.partition("/")
    if kind.lower() not in KINDS:
        known = "deploy, sts, ds, pod, ns, svc, authority"
        raise UsageError(f"cannot stat {text!r} ({flag}): unknown kind {kind!r}", hint=known)
    if "/" in text and not name:
        raise UsageError(f"{flag} {text!r} names no resource after the slash")
    return Resource(KINDS[kind.lower()], name or None)


@dataclass(frozen=True)
class StatRequest:
    resource: Resource
    namespace: str | None  # None: all namespaces
    window: str  # a Prometheus duration, e.g. 1m
    to: Resource | None = None
    to_namespace: str | None = None
    source: Resource | None = None  # --from
    from_namespace: str | None = None

    def __post_init__(self) -> None:
        if self.to is not None and self.source is not None:
            raise UsageError("--to and --from cannot be used together")
        if self.resource.kind == "service" and self.source is not None:
            raise UsageError("stat svc --from is not supported: services have no outbound side")


@dataclass(frozen=True)
class Query:
    """The PromQL of one stat request and the labels its results are grouped by."""

    requests: str
    latency: dict[float, str]
    tcp: str | None
    read_bytes: str | None
    write_bytes: str | None
    group_by: tuple[str, ...]  # (namespace label, name label) or (namespace label,)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _selector(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _group(prefix: str, kind: str) -> tuple[str, ...]:
    if kind == "namespace":
        return (f"{prefix}namespace",)
    return (f"{prefix}namespace", f"{prefix}{kind}")


def _labels(request: StatRequest) -> tuple[dict[str, str], tuple[str, ...], bool]:
    """(selector labels, group-by labels, inbound?)"""
    res = request.resource
    labels: dict[str, str] = {}
    if res.kind == "service":
        labels["direction"] = "outbound"
        if request.namespace is not None:
            labels["dst_namespace"] = request.namespace
        if res.name:
            labels["dst_service"] = res.name
        return labels, _group("dst_", "service"), False
    if request.source is not None:
        src = request.source
        labels["direction"] = "outbound"
        source_ns = request.from_namespace or request.namespace
        if source_ns is not None and src.kind != "namespace":
            labels["namespace"] = source_ns
        if src.name:
            labels[src.kind] = src.name
        if request.namespace is not None and res.kind != "namespace":
            labels["dst_namespace"] = request.namespace
        if res.name:
            labels[f"dst_{res.kind}"] = res.name
        return labels, _group("dst_", res.kind), False
    labels["direction"] = "inbound" if request.to is None else "outbound"
    if request.namespace is not None and res.kind != "namespace":
        labels["namespace"] = request.namespace
    if res.name:
        labels[res.kind] = res.name
    if request.to is not None:
        target = request.to
        to_ns = request.to_namespace or request.namespace
        if to_ns is not None and target.kind != "namespace":
            labels["dst_namespace"] = to_ns
        if target.name:
            labels[f"dst_{target.kind}"] = target.name
    return labels, _group("", res.kind), request.to is None


def build_queries(request: StatRequest) -> Query:
    labels, group_by, inbound = _labels(request)
    selector = _selector(labels)
    by = ", ".join(group_by)
    window = request.window
    latency = {
        q: f"histogram_quantile({q}, sum(irate(response_latency_ms_bucket{selector}[{window}])) "
        f"by (le, {by}))"
        for q in QUANTILES
    }
    tcp = read_bytes = write_bytes = None
    if inbound and request.resource.kind != "authority":
        tcp_selector = _selector({**labels, "peer": "src"})
        tcp = f"sum(tcp_open_connections{tcp_selector}) by ({by})"
        read_bytes = f"sum(increase(tcp_read_bytes_total{tcp_selector}[{window}])) by ({by})"
        write_bytes = f"sum(increase(tcp_write_bytes_total{tcp_selector}[{window}])) by ({by})"
    return Query(
        requests=f"sum(increase(response_total{selector}[{window}])) "
        f"by ({by}, classification, tls)",
        latency=latency,
        tcp=tcp,
        read_bytes=read_bytes,
        write_bytes=write_bytes,
        group_by=group_by,
    )
