"""Peak-EWMA latency, the load estimate Linkerd's balancer compares endpoints by.

Each endpoint keeps `rtt`, a moving average of observed response times that jumps *up* at once
to any slower observation (the peak) and decays *down* toward faster ones with weight
`exp(-elapsed / decay)`, so one slow response counts immediately and recovery is gradual.
An endpoint with no observation yet starts at `default_rtt`. Reading the load first decays the
estimate toward zero for the time since the last update (as tower's PeakEwma does: an idle
endpoint's estimate ages like an observation of 0), so an endpoint that was slow, or was never
tried, is tried again after a while and its estimate stays current. The load is
`rtt * (pending + 1)`: latency weighted by the requests it already has in flight, so a fast
endpoint that is busy and a slow idle one are compared on what a new request would wait.

Pure: the caller passes `now` (seconds, any monotonic origin), so tests need no sleeping.
"""

from __future__ import annotations

import math

__all__ = ["PeakEwma"]


class PeakEwma:
    __slots__ = ("decay", "pending", "rtt", "stamp")

    def __init__(self, now: float, *, decay: float = 10.0, default_rtt: float = 0.03) -> None:
        self.decay = decay
        self.rtt = default_rtt
        self.stamp = now
        self.pending = 0

    def observe(self, rtt: float, now: float) -> None:
        if rtt > self.rtt:
            self.rtt = rtt
        else:
            elapsed = max(0.0, now - self.stamp)
            weight = math.exp(-elapsed / self.decay) if self.decay > 0 else 0.0
            self.rtt = self.rtt * weight + rtt * (1.0 - weight)
        self.stamp = now

    def load(self, now: float | None = None) -> float:
        """The load at `now` (decaying the estimate to it); None: as last updated."""
        if now is not None:
            self.observe(0.0, now)
        return self.rtt * (self.pending + 1)
