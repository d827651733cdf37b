"""The dashboard's answers: its page and assets, and JSON from Prometheus (no sockets here).

`Api(source).handle(target)` maps a request target to `(status, content type, body)`:

    /                     index.html (every asset is in `static/`, served by us: no CDN)
    /app.js, /app.css     the page's script and style
    /api/namespaces       `viz stat ns -A` rows                       ?window=1m
    /api/workloads        `viz stat deploy -n NS` rows                ?ns=NS&window=1m
    /api/edges            `viz edges deploy -n NS` edges              ?ns=NS
    /api/history          the workloads' rows over the last `span`   ?ns=NS&window=1m&span=5m
                          (range queries, one point every span/60, at least 1 s)
    /api/tap              live tap events of a workload, streamed    ?namespace=NS&resource=
                          (`lacewing.viz.dashboard.tap`: JSON lines,  deploy/NAME&duration=
                          bounded in time and count)                  60s&max_events=500

The figures are `lacewing.viz.statquery.stat_rows` and `lacewing.viz.edges`, the code
`viz stat` and `viz edges` run, so the page shows what the CLI prints. Each JSON answer
carries `at`, the instant (Unix seconds, from the injectable clock) at which every query of
the answer was evaluated, `queries`, the PromQL sent, and `prometheus`, which one answered:
anyone can ask the same Prometheus the same question at the same instant and compare.
`answer(target)` is what the server calls: `handle`'s answer, or for /api/tap a `Streamed`
(or its refusal) from `Source.tap`, the events `viz tap` prints.
A bad parameter is a 400 with one line of reason; a Prometheus that cannot be reached or
refuses is a 502 with its reason (the page shows it and keeps polling).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from lacewing.errors import LacewingError
from lacewing.viz.dashboard.tap import Streamed, Tapper, TapSource
from lacewing.viz.edges import edges, edges_query
from lacewing.viz.prometheus import Prometheus
from lacewing.viz.promql import Resource, StatRequest, build_queries
from lacewing.viz.scrape import parse_window
from lacewing.viz.statquery import query_texts, row_dict, stat_history, stat_rows
from lacewing.viz.summary import InventoryItem

__all__ = ["Api", "Response", "Source", "Streamed"]

Response = tuple[int, str, bytes]
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}
JSON = "application/json"
HISTORY_FIELDS = (
    "requests",
    "rps",
    "success",
    "latency_ms_p50",
    "latency_ms_p95",
    "latency_ms_p99",
)


@dataclass(frozen=True)
class Source:
    """Where the figures come from: a Prometheus, who says which resources exist, and the
    tap (`lacewing.viz.tapstream.tap_events` for the cluster; None: the page has no tap)."""

    prometheus: Prometheus
    inventory: Callable[[str, str | None], Sequence[InventoryItem] | None]
    tap: TapSource | None = None


class _BadRequest(Exception):
    pass


def _json(status: int, data: Any) -> Response:
    return status, JSON, json.dumps(data).encode()


class Api:
    def __init__(self, source: Source, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.clock = clock
        self.tapper = Tapper(source.tap)

    def answer(self, target: str) -> Response | Streamed:
        path, _, query = target.partition("?")
        if path == "/api/tap":
            return self.tapper.open(query)
        return self.handle(target)

    def handle(self, target: str) -> Response:
        parts = urllib.parse.urlsplit(target)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
        if parts.path in STATIC:
            name, kind = STATIC[parts.path]
            body = resources.files(__package__).joinpath("static", name).read_bytes()
            return 200, kind, body
        routes = {
            "/api/namespaces": self._namespaces,
            "/api/workloads": self._workloads,
            "/api/edges": self._edges,
            "/api/history": self._history,
        }
        route = routes.get(parts.path)
        if route is None:
            return 404, "text/plain; charset=utf-8", b"not found\n"
        try:
            return _json(200, route(params))
        except _BadRequest as exc:
            return _json(400, {"error": str(exc)})
        except LacewingError as exc:
            return _json(502, {"error": str(exc)})

    def _window(self, params: dict[str, str], name: str = "window") -> tuple[float, str]:
        text = params.get(name, {"window": "1m", "span": "5m"}[name])
        try:
            seconds = parse_window(text, name)
        except LacewingError as exc:
            raise _BadRequest(str(exc)) from None
        return seconds, f"{round(seconds * 1000)}ms"

    def _stat(self, kind: str, namespace: str | None, params: dict[str, str]) -> dict[str, Any]:
        seconds, window = self._window(params)
        request = StatRequest(Resource(kind), namespace, window)
        inventory = self.source.inventory(kind, namespace)
        at = round(self.clock(), 3)
        rows = stat_rows(self.source.prometheus, request, seconds, inventory, at)
        return {
            "at": at,
            "window": seconds,
            "prometheus": self.source.prometheus.where,
            "queries": query_texts(build_queries(request)),
            "rows": [row_dict(r) for r in rows],
        }

    def _namespaces(self, params: dict[str, str]) -> dict[str, Any]:
        return self._stat("namespace", None, params)

    def _namespace(self, params: dict[str, str]) -> str:
        namespace = params.get("ns", "")
        if not namespace:
            raise _BadRequest("the ns parameter names no namespace")
        return namespace

    def _workloads(self, params: dict[str, str]) -> dict[str, Any]:
        return self._stat("deployment", self._namespace(params), params)

    def _edges(self, params: dict[str, str]) -> dict[str, Any]:
        namespace = self._namespace(params)
        text = edges_query("deployment", namespace)
        at = round(self.clock(), 3)
        found = edges("deployment", self.source.prometheus.query(text, at))
        return {
            "at": at,
            "prometheus": self.source.prometheus.where,
            "queries": [text],
            "edges": [asdict(e) for e in found],
        }

    def _history(self, params: dict[str, str]) -> dict[str, Any]:
        namespace = self._namespace(params)
        seconds, window = self._window(params)
        span, _ = self._window(params, "span")
        if span > 86400:
            raise _BadRequest("span must be at most 24h")
        step = float(max(1, round(span / 60)))
        request = StatRequest(Resource("deployment"), namespace, window)
        end = round(self.clock(), 3)
        series: dict[str, list[dict[str, Any]]] = {}
        for at, rows in stat_history(
            self.source.prometheus, request, seconds, end - span, end, step
        ):
            for row in rows:
                point = row_dict(row)
                series.setdefault(row.name, []).append(
                    {"at": at} | {k: point[k] for k in HISTORY_FIELDS}
                )
        return {
            "at": end,
            "step": step,
            "prometheus": self.source.prometheus.where,
            "series": series,
        }
