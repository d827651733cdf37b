"""The route rows: the routes they configure, and the issue-12 target judged from a run."""

from __future__ import annotations

import pytest
from bench import routes
from bench.parse import WrkResult
from bench.report import Run
from bench.runner import RowResult

from lacewing.core.route_table import Request, RouteTable
from lacewing.core.routes import parse_route


@pytest.mark.parametrize(
    ("routes_of", "count"),
    [(routes.one_route, 1), (routes.prefix_routes, 100), (routes.query_routes, 100)],
)
def test_the_load_takes_the_route_the_row_says_and_it_is_the_last_in_precedence(
    routes_of: routes.Routes, count: int
) -> None:
    objects, target, name = routes_of(8080)
    table = RouteTable(parse_route(obj) for obj in objects)
    assert len(table) == count
    path, _, query = target.partition("?")
    found = table.find(Request("GET", path, {}.get, query))
    assert found is not None and found.route.name == name
    candidates = [e for e in table.entries() if e.match.path.matches(path)]
    assert candidates[-1].route.name == name  # every other candidate is walked before it


def _row(key: str, rps: float, errors: int = 0) -> RowResult:
    c16 = WrkResult(int(rps * 10), 10.0, rps, 100, 100, 200, 200, errors)
    return RowResult(key, key, "plain", c16=c16, c16_rounds=[c16, c16])


def test_the_target_is_the_ratio_to_the_pair_with_no_routes() -> None:
    run = Run("t", [], [])
    target = routes.TARGETS[0]
    assert target.check(run).status == "NOT MEASURED"
    run.rows["lacewing"] = _row("lacewing", 10000)
    run.rows["lacewing-routes100"] = _row("lacewing-routes100", 9100)
    verdict = target.check(run)
    assert verdict.status == "PASS" and verdict.figure.startswith("0.91x (9,100 vs 10,000")
    run.rows["lacewing-routes100"] = _row("lacewing-routes100", 8900)
    assert target.check(run).status == "MISS"
    run.rows["lacewing-routes100"] = _row("lacewing-routes100", 9900, errors=5)
    assert target.check(run).status == "MISS"  # fast failures are not throughput
    run.rows["lacewing-routes100q"] = _row("lacewing-routes100q", 2500)
    assert routes.TARGETS[-1].check(run).status == "INFO"
    assert "| INFO | 0.25x" in "\n".join(routes.render(run))
