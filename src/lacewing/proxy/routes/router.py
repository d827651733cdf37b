"""The route layer: logical target + request -> a route's rule -> a backend -> an endpoint.

    Logical(orig_dst)  --routes(dst)-->  _Parent (compiled once per route table)
        request (method, path, headers, query) --RouteTable.find--> RulePlan
            RulePlan.choose(rng)   weighted backendRefs (a traffic split)  -> BackendPlan
                discovery.pick_backend(authority)                          -> Pick (Endpoint)

`Router.route(logical, method, target, header)` returns None when destination sent no
routes for the destination (the codec then picks from the Service as before), otherwise a
`Routed`: the rule's plan (its filters, timeouts, retry policy and budget, its metrics), the
backend chosen and the `Pick` from that backend's balancer, or an `error` the proxy answers
itself: 404 when no rule matches (as Gateway API asks), 503 when the chosen backend has no
endpoints. A backend whose stream has not answered yet (a route just added a new Service)
is served from the parent Service meanwhile, so applying a route never fails a request.

A route table is compiled into `_Parent` when its update counter moves; the compiled rules
keep their `HttpRouteStats` (from `metrics.routes`) and the route's `RetryBudget`, both
kept across recompilations (a 90/10 -> 50/50 change keeps its counters and budget).
`retry(routed, logical)` picks again for a retry from the same backend. Pure routing: no I/O
of its own beyond what discovery's streams do.
"""

from __future__ import annotations

import random
import time
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate

from lacewing.core.discovery import DEFAULT_CLUSTER_DOMAIN
from lacewing.core.route_table import RouteMatch, RouteTable
from lacewing.core.routes import BackendRef, Route, Rule
from lacewing.proxy.config import Addr
from lacewing.proxy.discovery.outbound import NO_ENDPOINTS, OutboundDiscovery
from lacewing.proxy.metrics.routes import BackendStats, HttpRouteStats, RouteMetrics
from lacewing.proxy.routes.budget import RetryBudget
from lacewing.proxy.targets import Logical, Pick

__all__ = ["MAX_REPLAY", "BackendPlan", "Routed", "Router", "RulePlan"]

MAX_REPLAY = 64 * 1024  # a request is retried only if all of it fits in this many bytes


class BackendPlan:
    __slots__ = ("authority", "ref", "stats")

    def __init__(self, authority: str, ref: BackendRef, stats: BackendStats) -> None:
        self.authority, self.ref, self.stats = authority, ref, stats


class RulePlan:
    """One rule of one route, compiled: what a matching request gets."""

    __slots__ = ("_cumulative", "backends", "budget", "found", "rule", "stats", "total")

    def __init__(self, found: RouteMatch, backends: tuple[BackendPlan, ...],
                 stats: HttpRouteStats, budget: RetryBudget | None) -> None:  # fmt: skip
        self.found, self.rule = found, found.rule
        self.backends, self.stats, self.budget = backends, stats, budget
        weights = [b.ref.weight for b in backends]
        self._cumulative = list(accumulate(weights))
        self.total = self._cumulative[-1] if weights else 0

    def choose(self, rng: random.Random) -> BackendPlan:
        if len(self.backends) == 1:
            return self.backends[0]
        return self.backends[bisect_right(self._cumulative, rng.random() * self.total)]


class Routed:
    """The route layer's answer for one request."""

    __slots__ = ("backend", "error", "pick", "plan")

    def __init__(self, plan: RulePlan | None, backend: BackendPlan | None, pick: Pick | None,
                 error: tuple[int, str] | None = None) -> None:  # fmt: skip
        self.plan, self.backend, self.pick, self.error = plan, backend, pick, error

    @property
    def rule(self) -> Rule | None:
        return self.plan.rule if self.plan is not None else None


class _Parent:
    __slots__ = ("plans", "table", "version")

    def __init__(self, table: RouteTable, version: int, plans: dict[int, RulePlan]) -> None:
        self.table, self.version, self.plans = table, version, plans


class Router:
    def __init__(
        self,
        discovery: OutboundDiscovery,
        metrics: RouteMetrics,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
    ) -> None:
        self.discovery, self.metrics = discovery, metrics
        self.rng = rng or random.Random()
        self.clock, self.cluster_domain = clock, cluster_domain
        self._parents: dict[Addr, _Parent | None] = {}
        self._versions: dict[Addr, int] = {}
        self._budgets: dict[tuple[Addr, str, str], RetryBudget] = {}

    def _parent(self, dst: Addr) -> _Parent | None:
        table, version = self.discovery.routes(dst)
        if self._versions.get(dst) == version:
            return self._parents.get(dst)
        self._versions[dst] = version
        parent = self._compile(dst, table, version) if table is not None else None
        self._parents[dst] = parent
        if len(self._parents) > 4096:  # destinations come and go: bound the cache
            self._parents.clear()
            self._versions.clear()
        return parent

    def _compile(self, dst: Addr, table: RouteTable, version: int) -> _Parent:
        plans: dict[int, RulePlan] = {}
        for found in table.entries():
            route = found.route
            parent = _parent_ref(route, dst.port)
            stats = self.metrics.route(parent, route.kind, route.namespace, route.name,
                                       str(dst))  # fmt: skip
            refs = found.rule.backends or (BackendRef(parent[1], parent[0], dst.port),)
            backends = []
            for ref in refs:
                port = ref.port if ref.port is not None else dst.port
                authority = ref.authority(self.cluster_domain, dst.port)
                self.discovery.follow_backend(authority)  # its stream now, not on first use
                counted = stats.backend(ref.namespace, ref.name, port)
                backends.append(BackendPlan(authority, ref, counted))
            budget = None
            if found.rule.retry is not None:
                key = (dst, route.namespace, route.name)
                budget = self._budgets.get(key)
                if budget is None:
                    budget = self._budgets[key] = RetryBudget(clock=self.clock)
            plans[id(found)] = RulePlan(found, tuple(backends), stats, budget)
        return _Parent(table, version, plans)

    def route(self, logical: Logical, method: str, target: str,
              header: Callable[[str], str | None]) -> Routed | None:  # fmt: skip
        """Which rule and backend `method target` to `logical` goes to (None: no routes)."""
        parent = self._parent(logical.orig_dst)
        if parent is None:
            return None
        if not target.startswith("/"):  # absolute form (http://host/path): its path
            target = "/" + target.partition("://")[2].partition("/")[2]
        path, _, query = target.partition("?")
        found = parent.table.match(method, path, header, query)
        if found is None:
            return Routed(None, None, None, (404, "no route matches this request"))
        plan = parent.plans[id(found)]
        plan.stats.requests += 1
        if plan.budget is not None:
            plan.budget.request()
        if found.rule.redirect is not None:
            return Routed(plan, None, None)
        backend = plan.choose(self.rng)
        backend.stats.requests += 1
        return self._pick(plan, backend, logical)

    def retry(self, routed: Routed, logical: Logical) -> Routed:
        """A new endpoint for a retry of `routed`, from the same backend."""
        assert routed.plan is not None and routed.backend is not None
        routed.backend.stats.requests += 1
        return self._pick(routed.plan, routed.backend, logical)

    def _pick(self, plan: RulePlan, backend: BackendPlan, logical: Logical) -> Routed:
        pick = self.discovery.pick_backend(backend.authority)
        if pick is None:  # the backend's stream has not answered yet: serve from the parent
            pick = self.discovery.pick(logical)
        elif pick is NO_ENDPOINTS:
            return Routed(
                plan, backend, None, (503, f"backend {backend.ref.name} has no endpoints")
            )
        return Routed(plan, backend, pick)


def _parent_ref(route: Route, port: int) -> tuple[str, str, int]:
    for ref in route.parents:
        if ref.port in (None, port):
            return (ref.namespace, ref.name, port)
    first = route.parents[0]
    return (first.namespace, first.name, port)
