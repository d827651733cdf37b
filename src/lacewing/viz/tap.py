"""`viz tap` and `viz top` as data: the filter a command asks for, the lines it prints.

Pure (no I/O): `tap_filter(...)` builds the `proxy.tap.filter.TapFilter` a tap request
carries from the command's options; `tap_line(event, wide)` is one printed line per ended
request, in the shape of Linkerd's `rsp` lines (`proxy=in|out src=... dst=... tls=...
:method= :authority= :path= :status= latency=`); `Top` aggregates events by (source,
destination, method, path), an end named by its deployment when known (the replicas of a
workload are one row) and `Top.render()` is the table `viz top` shows, most hits first.
Events are the JSON objects `proxy.tap.filter.encode_event` wrote, plus `pod`, the tapped pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lacewing.errors import UsageError
from lacewing.proxy.tap.filter import TapFilter

__all__ = ["OUTPUTS", "Top", "end_name", "parse_target", "tap_filter", "tap_line"]

OUTPUTS = ("table", "wide", "json")
_WORKLOAD_FIRST = ("deployment", "pod")  # top aggregates the replicas of a workload
_KINDS = {"deploy": "deployment", "deployment": "deployment", "po": "pod", "pod": "pod"}


def parse_target(text: str, what: str) -> tuple[str, str]:
    """`deploy/NAME` or `pod/NAME` -> ("deployment" | "pod", NAME)."""
    kind, sep, name = text.partition("/")
    if not sep or not name or kind not in _KINDS:
        raise UsageError(f"invalid {what} {text!r}", hint="use deploy/NAME or pod/NAME")
    return _KINDS[kind], name


def tap_filter(namespace: str, to: str | None = None, to_namespace: str | None = None,
               path: str | None = None, method: str | None = None,
               authority: str | None = None, max_rps: float | None = None,
               max_events: int | None = None) -> TapFilter:  # fmt: skip
    """What the proxies of the tapped pods are asked for."""
    destination: tuple[tuple[str, str], ...] = ()
    if to is not None:
        kind, name = parse_target(to, "--to")
        destination = tuple(sorted({kind: name, "namespace": to_namespace or namespace}.items()))
    if path is not None and not path.startswith("/"):
        raise UsageError(f"invalid --path {path!r}", hint="a path prefix starts with /")
    if max_rps is not None and not max_rps > 0:
        raise UsageError(f"invalid --max-rps {max_rps}", hint="a positive number of requests/s")
    return TapFilter(
        destination=destination,
        authority=authority,
        path=path,
        method=method.upper() if method else None,
        max_events=max_events,
        rps=max_rps,
    )


def end_name(end: dict[str, Any], prefer: tuple[str, ...] = ("pod", "deployment")) -> str:
    """An end, as short as it is known: pod (or first `prefer`), identity's SA.NS, or -."""
    for key in prefer:
        if end.get(key):
            return str(end[key])
    identity = str(end.get("identity") or "")
    if identity:
        return identity.partition(".serviceaccount.")[0]
    return "-"


def tap_line(event: dict[str, Any], wide: bool = False) -> str:
    proxy = "in" if event.get("direction") == "inbound" else "out"
    src, dst = event.get("source") or {}, event.get("destination") or {}
    parts = [
        "rsp",
        f"proxy={proxy}",
        f"src={end_name(src)}",
        f"dst={end_name(dst)}",
        f"tls={event.get('tls') or '-'}",
        f":method={event.get('method', '')}",
        f":authority={event.get('authority', '')}",
        f":path={event.get('path', '')}",
        f":status={event.get('status', 0)}",
    ]
    if event.get("grpc_status") is not None:
        parts.append(f"grpc-status={event['grpc_status']}")
    parts.append(f"latency={round(float(event.get('latency_ms', 0.0)) * 1000)}µs")
    if wide:
        parts += [
            f"src_id={src.get('identity') or '-'}",
            f"dst_id={dst.get('identity') or '-'}",
            f"pod={event.get('pod', '-')}",
        ]
    return " ".join(parts)


@dataclass
class _Row:
    count: int = 0
    ok: int = 0
    best_ms: float = float("inf")
    worst_ms: float = 0.0
    last_ms: float = 0.0


@dataclass
class Top:
    """Hits per (source, destination, method, path), as `viz top` shows them."""

    rows: dict[tuple[str, str, str, str], _Row] = field(default_factory=dict)

    def add(self, event: dict[str, Any]) -> None:
        key = (
            end_name(event.get("source") or {}, _WORKLOAD_FIRST),
            end_name(event.get("destination") or {}, _WORKLOAD_FIRST),
            str(event.get("method", "")),
            str(event.get("path", "")).partition("?")[0],
        )
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = _Row()
        latency = float(event.get("latency_ms", 0.0))
        status = int(event.get("status", 0))
        grpc = event.get("grpc_status")
        row.count += 1
        row.ok += int(0 < status < 500 and (grpc is None or grpc == 0))
        row.best_ms = min(row.best_ms, latency)
        row.worst_ms = max(row.worst_ms, latency)
        row.last_ms = latency

    def ranked(self) -> list[dict[str, Any]]:
        ordered = sorted(self.rows.items(), key=lambda kv: (-kv[1].count, kv[0]))
        return [
            {"source": s, "destination": d, "method": m, "path": p, "count": r.count,
             "best_ms": round(r.best_ms, 3), "worst_ms": round(r.worst_ms, 3),
             "last_ms": round(r.last_ms, 3), "success": round(r.ok / r.count, 4)}
            for (s, d, m, p), r in ordered
        ]  # fmt: skip

    def render(self) -> list[str]:
        header = ["SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "BEST", "WORST", "LAST",
                  "SUCCESS"]  # fmt: skip
        rows = [
            [r["source"], r["destination"], r["method"], r["path"], str(r["count"]),
             _ms(r["best_ms"]), _ms(r["worst_ms"]), _ms(r["last_ms"]),
             f"{r['success'] * 100:.2f}%"]
            for r in self.ranked()
        ]  # fmt: skip
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        return ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                for r in [header, *rows]]  # fmt: skip


def _ms(value: float) -> str:
    return f"{value:.1f}ms" if value >= 1 else f"{round(value * 1000)}µs"
