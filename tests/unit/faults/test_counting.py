"""The fault suite's counting: what is in flight at a fault, what is lost beyond it."""

from __future__ import annotations

from tests.faults.counting import count


def test_failures_in_flight_at_an_instant_are_apart_from_the_ones_lost() -> None:
    records = [
        [0.0, 0.5, "ok"],
        [0.9, 1.2, "ConnectionResetError"],  # in flight at the kill (t=1.0)
        [1.1, 1.3, "HTTP 502"],  # after the kill: lost
        [1.0, 1.0, "ok"],
        [2.0, 2.1, "ok"],
    ]
    counts = count(records, [1.0])
    assert (counts.sent, counts.ok, counts.failed) == (5, 3, 2)
    assert (counts.in_flight, counts.expected, counts.beyond) == (1, 0, 1)
    assert counts.outcomes == {"ConnectionResetError": 1, "HTTP 502": 1}


def test_expected_failures_are_counted_not_hidden() -> None:
    records = [[1.5, 1.6, "ConnectionRefusedError"], [3.5, 3.6, "ConnectionRefusedError"]]
    counts = count(records, [1.0], allowed=lambda start: start < 3.0)
    assert (counts.failed, counts.in_flight, counts.expected, counts.beyond) == (2, 0, 1, 1)


def test_no_fault_instant_means_every_failure_is_lost() -> None:
    counts = count([[0.0, 9.0, "TimeoutError"]], [])
    assert counts.beyond == 1
