"""`viz edges`: who talks to whom, and whether the connection was mutual TLS (pure).

One PromQL query over the clients' outbound request metrics, as Linkerd's edges API does:

    count(response_total{direction="outbound", namespace=NS}) by
        (namespace, KIND, dst_namespace, dst_KIND, server_id, tls, no_tls_reason)

Each series is a (source, destination) pair seen by the source's proxy; `server_id` is the
identity the destination's proxy presented (only under mutual TLS). An edge is SECURED (`√`)
when every series of the pair is `tls="true"`, otherwise it shows the `no_tls_reason` (or
`not mTLS`). Series without a `dst_KIND` label (traffic leaving the mesh, or to a pod the
destination service does not know) are not edges and are left out.

    SRC     DST     SRC_NS   DST_NS   SECURED
    web     emoji   shop     shop     √
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lacewing.viz.summary import Series

__all__ = ["Edge", "edges", "edges_query", "render_edges"]


@dataclass(frozen=True)
class Edge:
    src_namespace: str
    src: str
    dst_namespace: str
    dst: str
    secured: bool
    reason: str
    server_id: str


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def edges_query(kind: str, namespace: str | None) -> str:
    selector = 'direction="outbound"'
    if namespace is not None:
        selector += f', namespace="{_escape(namespace)}"'
    return (
        f"count(response_total{{{selector}}}) by (namespace, {kind}, dst_namespace, dst_{kind}, "
        "server_id, tls, no_tls_reason)"
    )


def edges(kind: str, series: Iterable[Series]) -> list[Edge]:
    pairs: dict[tuple[str, str, str, str], list[tuple[bool, str, str]]] = {}
    for labels, _ in series:
        key = (
            labels.get("namespace", ""),
            labels.get(kind, ""),
            labels.get("dst_namespace", ""),
            labels.get(f"dst_{kind}", ""),
        )
        if not all(key):
            continue
        tls = labels.get("tls") == "true"
        reason = labels.get("no_tls_reason") or ("" if tls else "not mTLS")
        pairs.setdefault(key, []).append((tls, reason, labels.get("server_id", "")))
    out = []
    for key, seen in sorted(pairs.items()):
        secured = all(tls for tls, _, _ in seen)
        reasons = sorted({reason for tls, reason, _ in seen if not tls})
        servers = sorted({server for _, _, server in seen if server})
        out.append(Edge(*key, secured, ",".join(reasons), ",".join(servers)))
    return out


def render_edges(rows: Sequence[Edge], *, wide: bool = False) -> str:
    header = ["SRC", "DST", "SRC_NS", "DST_NS", "SECURED"] + (["SERVER_ID"] if wide else [])
    table = [header]
    for e in rows:
        line = [e.src, e.dst, e.src_namespace, e.dst_namespace, "√" if e.secured else e.reason]
        table.append(line + ([e.server_id or "-"] if wide else []))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return (
        "\n".join(
            "   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in table
        )
        + "\n"
    )
