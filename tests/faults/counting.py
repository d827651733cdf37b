"""Counting a load run's outcomes against the moments a fault hit.

A record is `[start, end, outcome]` (unix seconds; outcome "ok" or why it failed). A failed
request was *in flight* to the fault when it had started, and not yet ended, at one of the
fault's instants (the kill, the stop, the moment loss began): those are the ones a fault may
take with it. Every other failure is *beyond in flight*: the requests a user would say the
mesh lost. `allowed` marks failures a fault is expected to cause beyond those (the client's
own proxy down, an expired certificate): they are counted apart, never hidden.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Counts", "Record", "count"]

Record = Sequence[object]  # [start: float, end: float, outcome: str]


@dataclass(frozen=True)
class Counts:
    sent: int
    ok: int
    failed: int
    in_flight: int  # failed, and in flight at a fault instant
    expected: int  # failed beyond in flight, inside what the fault is expected to break
    beyond: int  # failed beyond in flight and beyond the expected: lost
    outcomes: Counter[str] = field(default_factory=Counter)


def count(
    records: Sequence[Record],
    instants: Sequence[float],
    allowed: Callable[[float], bool] = lambda start: False,
) -> Counts:
    failed = [r for r in records if r[2] != "ok"]

    def in_flight(r: Record) -> bool:
        start, end = float(r[0]), float(r[1])  # type: ignore[arg-type]
        return any(start <= t <= end for t in instants)

    flying = [r for r in failed if in_flight(r)]
    rest = [r for r in failed if not in_flight(r)]
    expected = [r for r in rest if allowed(float(r[0]))]  # type: ignore[arg-type]
    return Counts(
        sent=len(records),
        ok=len(records) - len(failed),
        failed=len(failed),
        in_flight=len(flying),
        expected=len(expected),
        beyond=len(rest) - len(expected),
        outcomes=Counter(str(r[2]) for r in failed),
    )
