"""A retry budget, as Linkerd's: retries stay within 20% of requests plus 10 per second.

Over a sliding window (10 s), the budget counts the requests that came in and the retries
it granted. A retry is granted while

    retries_in_window < ratio * requests_in_window + min_per_second * window

so a healthy service can always retry a little (the reserve), a busy one in proportion to
its traffic, and a failing backend is never hammered: once every request fails, retries add
at most `ratio` more load. The window is `slots` buckets of `window / slots` seconds each,
rotated by the clock (injectable); counting is two additions, checking one sum. Pure.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RetryBudget"]


class RetryBudget:
    __slots__ = ("_epoch", "_requests", "_retries", "clock", "min_per_second", "ratio",
                 "slot_seconds", "window")  # fmt: skip

    def __init__(
        self,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        window: float = 10.0,
        *,
        slots: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio, self.min_per_second, self.window = ratio, min_per_second, window
        self.slot_seconds = window / slots
        self.clock = clock
        self._requests = [0] * slots
        self._retries = [0] * slots
        self._epoch = int(clock() / self.slot_seconds)

    def _slot(self) -> int:
        epoch = int(self.clock() / self.slot_seconds)
        slots = len(self._requests)
        if epoch != self._epoch:
            for e in range(max(self._epoch + 1, epoch - slots + 1), epoch + 1):
                self._requests[e % slots] = self._retries[e % slots] = 0
            self._epoch = epoch
        return epoch % slots

    def request(self) -> None:
        """One request came in (it deposits `ratio` of a retry)."""
        self._requests[self._slot()] += 1

    def try_retry(self) -> bool:
        """Withdraw one retry if the budget allows it."""
        slot = self._slot()
        allowed = self.ratio * sum(self._requests) + self.min_per_second * self.window
        if sum(self._retries) + 1 > allowed:
            return False
        self._retries[slot] += 1
        return True

    @property
    def retries(self) -> int:
        self._slot()
        return sum(self._retries)

    @property
    def requests(self) -> int:
        self._slot()
        return sum(self._requests)
