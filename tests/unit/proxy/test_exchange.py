"""The shared HTTP exchange: every ending counts one response and ends the pick once."""

from __future__ import annotations

import pytest

from lacewing.proxy.balance import Balancer
from lacewing.proxy.config import Addr
from lacewing.proxy.exchange import Exchange
from lacewing.proxy.metrics import RouteStats
from lacewing.proxy.targets import Endpoint, Pick


class Clock:
    now = 10.0

    def __call__(self) -> float:
        return self.now


def _exchange() -> tuple[Exchange, Balancer[str], RouteStats]:
    balancer: Balancer[str] = Balancer({"a": 1}, clock=Clock())
    route = RouteStats()
    ticket = balancer.take()
    pick = Pick(Endpoint(Addr("10.42.0.5", 8080)), ticket)  # type: ignore[arg-type]
    return Exchange(route, 10.0, pick), balancer, route


def _counts(route: RouteStats) -> dict[tuple[int, str], int]:
    return {key: stats.count for key, stats in route.responses.items()}


@pytest.mark.parametrize(
    ("end", "status", "ejected"),
    [
        (lambda x: x.answered(200, 10.002), (200, "success"), False),
        (lambda x: x.answered(503, 10.002), (503, "failure"), False),  # the app's 5xx
        (lambda x: x.failed(502, 10.002), (502, "failure"), True),
        (lambda x: x.refused(400, 10.002), (400, "success"), False),
        (lambda x: x.abandoned(), None, False),
    ],
)
def test_each_ending_counts_once_and_ends_the_pick_once(
    end: object, status: tuple[int, str] | None, ejected: bool
) -> None:
    exchange, balancer, route = _exchange()
    assert balancer.in_flight("a") == 1
    end(exchange)  # type: ignore[operator]
    # whatever is reported afterwards changes nothing
    exchange.answered(200, 10.5)
    exchange.failed(502, 10.5)
    exchange.abandoned()
    assert balancer.in_flight("a") == 0
    assert _counts(route) == ({status: 1} if status else {})
    assert balancer.ejected() == (["a"] if ejected else [])
