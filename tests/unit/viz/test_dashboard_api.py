"""The dashboard's JSON answers from a fake Prometheus: the same rows `viz stat` makes, the
queries and the evaluation instant passed through, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from lacewing.errors import RuntimeEnvError
from lacewing.viz.dashboard.api import Api, Source
from lacewing.viz.summary import InventoryItem, Series


class FakePrometheus:
    where = "fake"

    def __init__(self, fail: bool = False) -> None:
        self.asked: list[tuple[str, float | None]] = []
        self.fail = fail

    def query(self, promql: str, at: float | None = None) -> list[Series]:
        self.asked.append((promql, at))
        if self.fail:
            raise RuntimeEnvError("cannot reach the local cluster's Prometheus: refused")
        labels: Mapping[str, str]
        if promql.startswith("sum(increase(response_total"):
            base = {"namespace": "shop", "deployment": "web", "tls": "true"}
            return [
                ({**base, "classification": "success"}, 90.0),
                ({**base, "classification": "failure"}, 30.0),
            ]
        if promql.startswith("histogram_quantile(0.5,"):
            labels = {"namespace": "shop", "deployment": "web"}
            return [(labels, 3.0)]
        if promql.startswith("count(response_total"):
            labels = {
                "namespace": "shop", "deployment": "web", "dst_namespace": "shop",
                "dst_deployment": "db", "tls": "true", "server_id": "db.shop.id",
            }  # fmt: skip
            return [(labels, 1.0)]
        return []


def inventory(kind: str, namespace: str | None) -> Sequence[InventoryItem]:
    return [InventoryItem("shop", "web", 2, 2), InventoryItem("shop", "db", 1, 1)]


def answer(api: Api, target: str) -> tuple[int, dict[str, object]]:
    status, kind, body = api.handle(target)
    assert kind == "application/json"
    data: dict[str, object] = json.loads(body)
    return status, data


def test_workloads_are_viz_stat_rows_at_one_instant() -> None:
    prom = FakePrometheus()
    api = Api(Source(prom, inventory), clock=lambda: 1000.25)
    status, data = answer(api, "/api/workloads?ns=shop&window=1m")
    assert status == 200
    assert data["at"] == 1000.25 and data["window"] == 60.0 and data["prometheus"] == "fake"
    rows = {r["name"]: r for r in data["rows"]}  # type: ignore[attr-defined]
    assert rows["web"]["rps"] == 2.0 and rows["web"]["success"] == 0.75
    assert rows["web"]["latency_ms_p50"] == 3.0 and rows["web"]["meshed"] == "2/2"
    assert rows["db"]["requests"] == 0 and rows["db"]["success"] is None
    assert {at for _, at in prom.asked} == {1000.25}
    assert [q for q, _ in prom.asked] == data["queries"]
    assert 'namespace="shop"' in prom.asked[0][0] and "[60000ms]" in prom.asked[0][0]


def test_edges() -> None:
    api = Api(Source(FakePrometheus(), inventory), clock=lambda: 5.0)
    status, data = answer(api, "/api/edges?ns=shop")
    assert status == 200
    assert data["edges"] == [
        {
            "src_namespace": "shop", "src": "web", "dst_namespace": "shop", "dst": "db",
            "secured": True, "reason": "", "server_id": "db.shop.id",
        }
    ]  # fmt: skip


def test_errors_are_one_line() -> None:
    api = Api(Source(FakePrometheus(), inventory))
    assert answer(api, "/api/workloads?window=1m") == (
        400, {"error": "the ns parameter names no namespace"}
    )  # fmt: skip
    assert answer(api, "/api/namespaces?window=-3") == (
        400, {"error": "invalid duration '-3' for window"}
    )  # fmt: skip
    down = Api(Source(FakePrometheus(fail=True), inventory))
    status, data = answer(down, "/api/namespaces")
    assert status == 502 and data == {
        "error": "cannot reach the local cluster's Prometheus: refused"
    }
    assert api.handle("/nope")[0] == 404


def test_page_and_assets_are_ours() -> None:
    api = Api(Source(FakePrometheus(), inventory))
    for path, kind in (
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ):
        status, content_type, body = api.handle(path)
        assert status == 200 and content_type.startswith(kind) and body
    page = api.handle("/")[2].decode()
    assert 'src="app.js"' in page and 'href="app.css"' in page and "https://" not in page


class RangePrometheus(FakePrometheus):
    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        self.asked.append((f"{promql} [{start}..{end} by {step}]", None))
        base = {"namespace": "shop", "deployment": "web", "tls": "true"}
        if promql.startswith("sum(increase(response_total"):
            return [
                ({**base, "classification": "success"}, [(940.0, 30.0), (1000.0, 60.0)]),
                ({**base, "classification": "failure"}, [(1000.0, 60.0)]),
            ]
        return []


def test_history_is_the_rows_of_each_instant() -> None:
    prom = RangePrometheus()
    api = Api(Source(prom, inventory), clock=lambda: 1000.0)
    status, data = answer(api, "/api/history?ns=shop&window=1m&span=10m")
    assert status == 200 and data["step"] == 10.0
    assert data["series"] == {
        "web": [
            {"at": 940.0, "requests": 30.0, "rps": 0.5, "success": 1.0,
             "latency_ms_p50": None, "latency_ms_p95": None, "latency_ms_p99": None},
            {"at": 1000.0, "requests": 120.0, "rps": 2.0, "success": 0.5,
             "latency_ms_p50": None, "latency_ms_p95": None, "latency_ms_p99": None},
        ]
    }  # fmt: skip
    assert prom.asked[0][0].endswith("[400.0..1000.0 by 10.0]")
    assert answer(api, "/api/history?ns=shop&span=2d")[0] == 400


def test_parse_range() -> None:
    from lacewing.viz.prometheus import parse_range, range_path

    body = json.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [{"metric": {"pod": "a"}, "values": [[1.5, "2"], [2.5, "NaN"]]}],
            },
        }
    )
    ((labels, points),) = parse_range(body)
    assert labels == {"pod": "a"} and points[0] == (1.5, 2.0) and points[1][1] != points[1][1]
    assert (
        range_path("up", 1, 2.5, 1) == "/api/v1/query_range?query=up&start=1.000&end=2.500&step=1"
    )
