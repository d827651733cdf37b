"""Power of two choices over peak-EWMA load, with failed endpoints taken out and probed back.

`Balancer.pick()` draws two distinct endpoints at random among the *available* ones and returns
the one with the lower `PeakEwma.load() / weight` (Linkerd's and Finagle's P2C: nearly as good
as least-loaded, O(1), and no herd on the single best endpoint), with one difference: loads
within `TOLERANCE` (3x) of each other, or next to an endpoint with no response observed yet,
count as equal, and then fewer requests in flight per unit of weight wins, a tie being a coin
toss. Comparing estimates strictly let their noise decide: with sequential traffic (one gRPC
channel's calls, one keep-alive connection's requests) an equal replica that drew one slow
response lost every pair for the half minute its estimate took to decay (1 of 600 calls, on a
busy machine). An endpoint more than 3x slower still loses every pair, and a slow one that
queues requests loses on those. Simulated (600 sequential calls to three ~2 ms replicas, 1-5%
of calls 5-60 ms slower, 60 seeds): a replica under 25% of the calls in 0-9 seeds, against
45-53 with the strict comparison; of 3,000 requests a 5x slower replica gets 13%, a 10x
slower one under 1%, a 3x slower one its share (latency that close is noise here).

`take()` picks and counts the request (or connection) in flight in one step and returns a
`Ticket`, which must end exactly once: `done(ok, seconds)` records an outcome (latency measured
by the caller, or since the ticket was taken), `fail()` a failure, `cancel()` no outcome at all
(the client went away, shutdown): it only releases the in-flight count and, if the ticket was a
probe, puts the endpoint back to due-for-probe, so a probe that ends without an answer is
simply sent again. Later calls on an ended ticket do nothing. `begin(key)` is `take()` for a
key chosen elsewhere. The caller decides what "failed" means: the proxy reports connection
failures, not HTTP 5xx, so an application that fails some requests is not ejected, unless a
route turns on failure accrual for responses: then `fail_response(max_failures)` counts a 5xx
as a failure with its own threshold (`max_failures` consecutive failures eject, a success
resets the count).

Failure accrual (a small state machine per endpoint):

    state      event                           next
    ready      `threshold` consecutive fails   ejected until now + backoff (1 s, doubling, 60 s cap)
                                               times 1 + `jitter` * U[0, 1) (default 0.5)
    ejected    backoff elapsed                 probing: the next pick sends it ONE request
    probing    the probe succeeds              ready, backoff reset
    probing    the probe fails                 ejected with the doubled backoff

The jitter (drawn from `rng`) spreads the probes of endpoints that failed together, so a
recovering backend is not probed by every one of them at the same instant; the doubling
itself stays deterministic. A due probe is picked before P2C runs, so recovery is noticed on
the next request. When every endpoint is ejected and none is due, `pick()` raises
`Unavailable` (fail fast, as Linkerd does). `update(weights)` replaces the endpoint set,
keeping the statistics of endpoints that stay. Pure: time comes from the injected `clock`,
randomness from the injected `rng`.
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

TOLERANCE = 3.0  # loads closer than this factor are the same load


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
    """One request or connection in flight to `key`; ends exactly once (see module doc)."""

    __slots__ = ("_balancer", "_done", "_state", "key", "probe", "started")

    def __init__(
        self, balancer: Balancer[K], key: K, state: _State | None, started: float, probe: bool
    ) -> None:
        self._balancer = balancer
        self.key = key
        self._state = state
        self.started = started
        self.probe = probe
        self._done = False
        if state is not None:
            state.ewma.pending += 1

    @property
    def ended(self) -> bool:
        return self._done

    def done(
        self, ok: bool = True, seconds: float | None = None, threshold: int | None = None
    ) -> None:
        """The outcome; `threshold`: consecutive failures that eject (default: the balancer's)."""
        if self._done:
            return
        self._done = True
        state = self._state
        if state is None:
            return
        balancer = self._balancer
        now = balancer.clock()
        ewma = state.ewma
        if ewma.pending > 0:
            ewma.pending -= 1
        latency = now - self.started if seconds is None else seconds
        if ok and not (state.failures or state.probing or state.backoff
                       or state.ejected_until is not None):  # fmt: skip
            ewma.observe(latency, now)  # the common answer: nothing else to reset
            return
        balancer._outcome(state, ok, latency, now, threshold)

    def fail(self) -> None:
        self.done(False, 0.0)

    def fail_response(self, max_failures: int) -> None:
        """The endpoint answered with a failure (5xx) that counts towards ejection after
        `max_failures` consecutive ones (a route's failure accrual)."""
        self.done(False, 0.0, max_failures)

    def cancel(self) -> None:
        if self._done:
            return
        self._done = True
        state = self._state
        if state is not None:
            state.ewma.pending = max(0, state.ewma.pending - 1)
            if self.probe and state.probing:
                state.probing = False  # due again: the next pick probes once more


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
        jitter: float = 0.5,
    ) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.decay, self.default_rtt = decay, default_rtt
        self.threshold = threshold
        self.backoff_first, self.backoff_cap = backoff_first, backoff_cap
        self.jitter = jitter
        self._states: dict[K, _State] = {}
        self._ready: list[K] | None = None  # the keys P2C draws from while none is ejected
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
        self._ready = None

    def __len__(self) -> int:
        return len(self._states)

    def ejected(self) -> list[K]:
        return [k for k, s in self._states.items() if s.ejected_until is not None]

    def in_flight(self, key: K) -> int:
        return self._states[key].ewma.pending

    def load(self, key: K) -> float:
        return self._states[key].ewma.load()

    def pick(self) -> K:
        """The key to send the next request to (marks a due probe as probing)."""
        return self._choose(self.clock())[0]

    def take(self) -> Ticket[K]:
        """Pick and count a request in flight: the ticket must end exactly once."""
        now = self.clock()
        ready = self._ready
        if ready is not None and len(ready) == 1:  # one endpoint, not ejected: no choice
            key = ready[0]
            return Ticket(self, key, self._states[key], now, False)
        key, probe = self._choose(now)
        return Ticket(self, key, self._states[key], now, probe)

    def _choose(self, now: float) -> tuple[K, bool]:
        ready = self._ready
        if ready is None:  # (kept only while no endpoint is ejected: none can be due)
            ready = []
            ejected = False
            for key, state in self._states.items():
                if state.ejected_until is None:
                    if state.weight > 0:
                        ready.append(key)
                elif not state.probing and now >= state.ejected_until:
                    state.probing = True
                    return key, True
                else:
                    ejected = True
            if not ready:
                raise Unavailable(
                    "no endpoints" if not self._states else "every endpoint is failing"
                )
            if not ejected:
                self._ready = ready
        if len(ready) == 1:
            return ready[0], False
        a, b = self.rng.sample(ready, 2)  # a random pair, in random order
        sa, sb = self._states[a], self._states[b]
        la, lb = sa.ewma.load(now) / sa.weight, sb.ewma.load(now) / sb.weight
        if sa.ewma.known and sb.ewma.known:
            if la * TOLERANCE < lb:
                return a, False
            if lb * TOLERANCE < la:
                return b, False
        # as good as each other: fewer requests in flight per unit of weight, else the coin
        ca, cb = (sa.ewma.pending + 1) / sa.weight, (sb.ewma.pending + 1) / sb.weight
        return (b if cb < ca else a), False

    def begin(self, key: K) -> Ticket[K]:
        """A ticket for a request to `key` chosen by the caller (not a probe)."""
        return Ticket(self, key, self._states.get(key), self.clock(), False)

    def observe(self, key: K, ok: bool, seconds: float) -> None:
        """Record an outcome measured by the caller (no in-flight count to release)."""
        state = self._states.get(key)
        if state is not None:
            self._outcome(state, ok, seconds, self.clock())

    def _outcome(self, state: _State, ok: bool, seconds: float, now: float,
                 threshold: int | None = None) -> None:  # fmt: skip
        if ok:
            state.ewma.observe(seconds, now)
            state.failures, state.probing = 0, False
            state.ejected_until, state.backoff = None, 0.0
            return
        state.failures += 1
        if state.probing or state.failures >= (threshold or self.threshold):
            state.backoff = min(
                self.backoff_cap, state.backoff * 2 if state.backoff else self.backoff_first
            )
            jitter = 1.0 + self.jitter * self.rng.random()
            state.ejected_until = now + state.backoff * jitter
            state.probing = False
            self._ready = None
