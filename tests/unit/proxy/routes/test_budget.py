"""The retry budget: 20% of requests plus 10 retries a second, over a sliding 10 s window."""

from __future__ import annotations

from lacewing.proxy.routes import RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_service_gets_the_reserve_and_no_more() -> None:
    clock = Clock()
    budget = RetryBudget(clock=clock)
    granted = sum(budget.try_retry() for _ in range(500))
    assert granted == 100  # 10/s over 10 s, with no requests at all


def test_retries_follow_traffic_and_the_window_slides() -> None:
    clock = Clock()
    budget = RetryBudget(min_per_second=0.0, clock=clock)
    for _ in range(1000):
        budget.request()
    assert sum(budget.try_retry() for _ in range(1000)) == 200  # 20% of 1000
    clock.now += 5.0
    assert not budget.try_retry()  # still inside the window
    for _ in range(100):
        budget.request()
    assert sum(budget.try_retry() for _ in range(100)) == 20
    clock.now += 5.5  # the first 1000 requests (and their 200 retries) left the window
    assert budget.requests == 100 and budget.retries == 20
    assert not budget.try_retry()
    clock.now += 11.0
    assert budget.requests == 0 and budget.retries == 0
