"""Peak-EWMA latency, the load estimate Linkerd's balancer compares endpoints by.

Each endpoint keeps `rtt`, a moving average of observed response times that jumps *up* at once
toward any slower observation (the peak) and decays *down* toward faster ones with weight
`exp(-elapsed / decay)`, so a slow response counts immediately and recovery is gradual. Two
departures from tower's PeakEwma keep noise from passing for slowness:
- the first response replaces `default_rtt` outright (data, where the default is a prior);
- one jump multiplies the estimate by at most `PEAK_STEP` (1.5): an endpoint that turns 10x
  slower is there within six responses, while one scheduling hiccup on a busy node no longer
  makes an equal replica look 30x slower for the next half minute.
Reading the load first decays the estimate toward zero for the time since the last update (as
tower's does: an idle endpoint's estimate ages like an observation of 0), so an endpoint that
was slow is tried again after a while and its estimate stays current. The load is
`rtt * (pending + 1)`: latency weighted by the requests already in flight, so a fast endpoint
that is busy and a slow idle one are compared on what a new request would wait.

Pure: the caller passes `now` (seconds, any monotonic origin), so tests need no sleeping.
"""

from __future__ import annotations

import math

__all__ = ["PEAK_STEP", "PeakEwma"]

PEAK_STEP = 1.5  # the most one slower observation multiplies the estimate by
_exp = math.exp


class PeakEwma:
    __slots__ = ("decay", "pending", "rtt", "seen", "stamp")

    def __init__(self, now: float, *, decay: float = 10.0, default_rtt: float = 0.03) -> None:
        self.decay = decay
        self.rtt = default_rtt
        self.stamp = now
        self.pending = 0
        self.seen = False  # has a response been observed (the first replaces default_rtt)

    @property
    def known(self) -> bool:
        """Has a response been observed (else the estimate is `default_rtt`, a prior)?"""
        return self.seen

    def observe(self, rtt: float, now: float) -> None:
        if not self.seen:  # data, where the default is only a prior
            self.seen = True
            self.rtt = rtt
        elif rtt > self.rtt:
            self.rtt = min(rtt, self.rtt * PEAK_STEP) if self.rtt > 0 else rtt
        else:  # `_decay`, inline (once per response)
            elapsed = now - self.stamp
            decay = self.decay
            weight = (_exp(-elapsed / decay) if elapsed > 0.0 else 1.0) if decay > 0 else 0.0
            self.rtt = self.rtt * weight + rtt * (1.0 - weight)
        self.stamp = now

    def _decay(self, rtt: float, now: float) -> None:
        elapsed = max(0.0, now - self.stamp)
        weight = math.exp(-elapsed / self.decay) if self.decay > 0 else 0.0
        self.rtt = self.rtt * weight + rtt * (1.0 - weight)

    def load(self, now: float | None = None) -> float:
        """The load at `now` (decaying the estimate to it); None: as last updated."""
        if now is not None:
            self._decay(0.0, now)
            self.stamp = now
        return self.rtt * (self.pending + 1)
