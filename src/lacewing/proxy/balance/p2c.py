"""Power of two choices over peak-EWMA load, with failed endpoints taken out and probed back.

`Balancer.pick()` draws two distinct endpoints at random among the *available* ones and returns
the one with the lower `PeakEwma.load() / weight` (Linkerd's and Finagle's P2C: nearly as good
as least-loaded, O(1), and no herd on the single best endpoint). `begin(key)` counts a request
(or connection) in flight and returns a `Ticket`; `ticket.done(ok)` records its latency and
outcome; a caller that measures latency itself uses `observe(key, ok, seconds)` instead.
The caller decides what "failed" means: the proxy reports connection failures, not HTTP 5xx,
so an application that fails some requests is not ejected.

Failure accrual (a small state machine per endpoint):

    state      event                           next
    ready      `threshold` consecutive fails   ejected until now + backoff (1 s, doubling, 60 s cap)
    ejected    backoff elapsed                 probing: the next pick sends it ONE request
    probing    the probe succeeds              ready, backoff reset
    probing    the probe fails                 ejected with the doubled backoff

A due probe is picked before P2C runs, so recovery is noticed on the next request. When every
endpoint is ejected and none is due, `pick()` raises `Unavailable` (fail fast, as Linkerd does).
`update(weights)` replaces the endpoint set, keeping the statistics of endpoints that stay.
Pure: time comes from the injected `clock`, randomness from the injected `rng`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from lacewing.proxy.balance.ewma import PeakEwma

__all__ = ["Balancer", "Ticket", "Unavailable"]

K = TypeVar("K", bound=Hashable)


class Unavailable(Exception):
    """No endpoint can take a request now (none known, or all ejected)."""


@dataclass
class _State:
    ewma: PeakEwma
    weight: int
    failures: int = 0
    ejected_until: float | None = None
    backoff: float = 0.0
    probing: bool = False


class Ticket(Generic[K]):
    """One request or connection in flight to `key`."""

    __slots__ = ("_balancer", "_done", "key", "started")

    def __init__(self, balancer: Balancer[K], key: K, started: float) -> None:
        self._balancer, self.key, self.started, self._done = balancer, key, started, False

    def done(self, ok: bool = True) -> None:
        if not self._done:
            self._done = True
            self._balancer._finish(self, ok)


class Balancer(Generic[K]):
    def __init__(
        self,
        weights: Mapping[K, int] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        decay: float = 10.0,
        default_rtt: float = 0.03,
        threshold: int = 1,
        backoff_first: float = 1.0,
        backoff_cap: float = 60.0,
    ) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.decay, self.default_rtt = decay, default_rtt
        self.threshold = threshold
        self.backoff_first, self.backoff_cap = backoff_first, backoff_cap
        self._states: dict[K, _State] = {}
        self.update(weights or {})

    def update(self, weights: Mapping[K, int]) -> None:
        now = self.clock()
        kept = {k: s for k, s in self._states.items() if k in weights}
        for key, weight in weights.items():
            state = kept.get(key)
            if state is None:
                ewma = PeakEwma(now, decay=self.decay, default_rtt=self.default_rtt)
                kept[key] = _State(ewma, weight)
            else:
                state.weight = weight
        self._states = kept

    def __len__(self) -> int:
        return len(self._states)

    def ejected(self) -> list[K]:
        return [k for k, s in self._states.items() if s.ejected_until is not None]

    def in_flight(self, key: K) -> int:
        return self._states[key].ewma.pending

    def load(self, key: K) -> float:
        return self._states[key].ewma.load()

    def pick(self) -> K:
        now = self.clock()
        ready: list[K] = []
        for key, state in self._states.items():
            if state.ejected_until is None:
                if state.weight > 0:
                    ready.append(key)
            elif not state.probing and now >= state.ejected_until:
                state.probing = True
                return key
        if not ready:
            raise Unavailable("no endpoints" if not self._states else "every endpoint is failing")
        if len(ready) == 1:
            return ready[0]
        a, b = self.rng.sample(ready, 2)
        sa, sb = self._states[a], self._states[b]
        return a if sa.ewma.load(now) / sa.weight <= sb.ewma.load(now) / sb.weight else b

    def begin(self, key: K) -> Ticket[K]:
        state = self._states.get(key)
        if state is not None:
            state.ewma.pending += 1
        return Ticket(self, key, self.clock())

    def acquire(self, key: K) -> None:
        """Count one more request in flight to `key` (released by `release`)."""
        state = self._states.get(key)
        if state is not None:
            state.ewma.pending += 1

    def release(self, key: K) -> None:
        state = self._states.get(key)
        if state is not None:
            state.ewma.pending = max(0, state.ewma.pending - 1)

    def observe(self, key: K, ok: bool, seconds: float) -> None:
        """Record an outcome measured by the caller (no in-flight count to release)."""
        state = self._states.get(key)
        if state is not None:
            self._outcome(state, ok, seconds, self.clock())

    def _finish(self, ticket: Ticket[K], ok: bool) -> None:
        state = self._states.get(ticket.key)
        if state is None:  # removed while in flight
            return
        now = self.clock()
        state.ewma.pending = max(0, state.ewma.pending - 1)
        self._outcome(state, ok, now - ticket.started, now)

    def _outcome(self, state: _State, ok: bool, seconds: float, now: float) -> None:
        if ok:
            state.ewma.observe(seconds, now)
            state.failures, state.probing = 0, False
            state.ejected_until, state.backoff = None, 0.0
            return
        state.failures += 1
        if state.probing or state.failures >= self.threshold:
            state.backoff = min(
                self.backoff_cap, state.backoff * 2 if state.backoff else self.backoff_first
            )
            state.ejected_until = now + state.backoff
            state.probing = False
