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
endpoints. `RouteTarget.route_pick` for a destination with no routes gives `(pick, None)`,
but for a known Service with no endpoints (`targets.Empty`): `(that pick, a Routed with no
plan and the 503)`, so every codec answers it as its own error, labelled with the Service.
A backend whose stream has not answered yet (a route just added a new Service)
is served from the parent Service meanwhile, so applying a route never fails a request.

A route table is compiled into `_Parent` when its update counter moves; the compiled rules
keep their `HttpRouteStats` (from `metrics.routes`) and the route's `RetryBudget`, both
kept across recompilations (a 90/10 -> 50/50 change keeps its counters and budget).
`retry(routed, logical)` picks again for a retry from the same backend; `retry_elsewhere`
does so for an attempt that got no answer: its pick fails, and the retry goes to another
endpoint when the backend has one. Pure routing: no I/O of its own beyond what discovery's
streams do.

What a request pays is kept to the table's match and one balancer pick (the route rows of
`bench/routes.py` measure it against a pair with no destination at all):
- `target(logical)` is the route layer of one destination, which a codec holds per
  connection: it holds the discovery `Destination` and the compiled `_Parent` (looked up
  again only when the route table or the stream changes), so a request to a destination
  with no routes costs one version check before the balancer's pick;
- a compiled rule knows whether it is `simple` (no filter, fault, timeout or retry): the
  codecs then skip those steps entirely; each backend holds its `Destination` too;
- a table with no header match gives the same rule for the same method and target, so the
  compiled table remembers the rule of up to `MEMO` recent (method, target) pairs (a table
  with header matches is matched every time).
"""

from __future__ import annotations

import random
import time
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from lacewing.core.discovery import DEFAULT_CLUSTER_DOMAIN
from lacewing.core.route_table import RouteMatch, RouteTable
from lacewing.core.routes import BackendRef, Route, Rule
from lacewing.proxy.config import Addr
from lacewing.proxy.discovery.client import Resolution
from lacewing.proxy.discovery.outbound import NO_ENDPOINTS, Destination, OutboundDiscovery
from lacewing.proxy.metrics.routes import BackendStats, HttpRouteStats, RouteMetrics
from lacewing.proxy.routes.budget import RetryBudget
from lacewing.proxy.targets import Empty, Logical, Pick

__all__ = ["MAX_REPLAY", "BackendPlan", "RouteTarget", "Routed", "Router", "RulePlan"]

MAX_REPLAY = 64 * 1024  # a request is retried only if all of it fits in this many bytes
MEMO = 512  # (method, target) -> rule remembered per compiled table (no header matches)
_NOT_FOUND = (404, "no route matches this request")
_UNSEEN: Any = object()  # not in a memo yet


class BackendPlan:
    __slots__ = ("authority", "dest", "ref", "stats")

    def __init__(self, authority: str, ref: BackendRef, stats: BackendStats,
                 dest: Destination) -> None:  # fmt: skip
        self.authority, self.ref, self.stats, self.dest = authority, ref, stats, dest


class RulePlan:
    """One rule of one route, compiled: what a matching request gets. `simple`: the rule
    has no filter, fault, timeout or retry (the codecs skip those steps)."""

    __slots__ = ("_cumulative", "backends", "budget", "found", "only", "rule", "simple",
                 "stats", "total")  # fmt: skip

    def __init__(self, found: RouteMatch, backends: tuple[BackendPlan, ...],
                 stats: HttpRouteStats, budget: RetryBudget | None) -> None:  # fmt: skip
        self.found, self.rule = found, found.rule
        self.backends, self.stats, self.budget = backends, stats, budget
        self.only = backends[0] if len(backends) == 1 else None
        weights = [b.ref.weight for b in backends]
        self._cumulative = list(accumulate(weights))
        self.total = self._cumulative[-1] if weights else 0
        rule = found.rule
        self.simple = (rule.fault is None and rule.redirect is None and rule.timeout is None
                       and rule.backend_timeout is None and rule.retry is None
                       and rule.request_headers is None
                       and rule.response_headers is None)  # fmt: skip

    def choose(self, rng: random.Random) -> BackendPlan:
        only = self.only
        if only is not None:
            return only
        return self.backends[bisect_right(self._cumulative, rng.random() * self.total)]


class Routed:
    """The route layer's answer for one request; `simple`: a pick under a `simple` rule
    (the codec has no route step to take but counting it on the route)."""

    __slots__ = ("backend", "error", "pick", "plan", "simple")

    def __init__(self, plan: RulePlan | None, backend: BackendPlan | None, pick: Pick | None,
                 error: tuple[int, str] | None = None) -> None:  # fmt: skip
        self.plan, self.backend, self.pick, self.error = plan, backend, pick, error
        self.simple = error is None and plan is not None and plan.simple

    @property
    def rule(self) -> Rule | None:
        return self.plan.rule if self.plan is not None else None


class _Parent:
    """A route table compiled: a plan per entry, and the memo (None: the table matches
    headers, so the same target may take another rule)."""

    __slots__ = ("memo", "plans", "table")

    def __init__(self, table: RouteTable, plans: dict[int, RulePlan]) -> None:
        self.table, self.plans = table, plans
        self.memo: dict[tuple[str, str], RulePlan | None] | None = (
            None if table.uses_headers else {}
        )

    def plan(self, method: str, target: str) -> RulePlan | None:
        """The plan of the rule `method target` takes (None: no rule matches); `target`
        is origin-form (path and query). Headers are not asked for (memo: none matched)."""
        memo = self.memo
        assert memo is not None
        key = (method, target)
        try:
            return memo[key]
        except KeyError:
            pass
        path, _, query = target.partition("?")
        found = self.table.match(method, path, _no_header, query)
        plan = self.plans[id(found)] if found is not None else None
        if len(memo) >= MEMO:
            memo.clear()
        memo[key] = plan
        return plan


def _no_header(name: str) -> str | None:
    raise AssertionError(f"a table without header matches asked for header {name!r}")


class RouteTarget:
    """The route layer of one logical destination, for a codec to hold per connection:
    `route_pick` is `Side.route_pick` without any lookup by address."""

    __slots__ = ("_compiled", "_dest", "_router", "dst", "logical")

    def __init__(self, router: Router, logical: Logical) -> None:
        self._router, self.logical, self.dst = router, logical, logical.orig_dst
        self._dest = router.discovery.destination(self.dst)
        self._compiled: _Compiled | None = None

    def route_pick(self, method: str, target: str, header: Callable[[str], str | None]
                   ) -> tuple[Pick | None, Routed | None]:  # fmt: skip
        router = self._router
        discovery = router.discovery
        dest = self._dest
        if dest.last_used + 1.0 < discovery.clock() or dest.resolution.updates != dest.version:
            dest = self._dest = discovery.current(dest)  # (`current`'s own test, inline)
        resolution = dest.resolution
        compiled = self._compiled
        if (compiled is None or compiled.resolution is not resolution
                or compiled.version != resolution.route_updates):  # fmt: skip
            compiled = self._compiled = router._compiled(self.dst, resolution)
        parent = compiled.parent
        if parent is None:
            pick = discovery.take(dest)
            if pick.ticket is None and pick is dest.empty:  # a known Service, no endpoints
                return pick, Routed(None, None, None, (503, dest.empty.reason))
            return pick, None
        routed = router._route(parent, dest, method, target, header)
        return routed.pick, routed


class _Compiled:
    """A destination's route table as compiled for one version of its stream's routes."""

    __slots__ = ("parent", "resolution", "version")

    def __init__(self, resolution: Resolution, version: int, parent: _Parent | None) -> None:
        self.resolution, self.version, self.parent = resolution, version, parent


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
        self._compiled_by_dst: dict[Addr, _Compiled] = {}
        self._targets: dict[Addr, RouteTarget] = {}
        self._budgets: dict[tuple[Addr, str, str], RetryBudget] = {}

    def target(self, logical: Logical) -> RouteTarget:
        """The route layer of `logical`'s destination, to hold (one per connection)."""
        return RouteTarget(self, logical)

    def route_pick(
        self, logical: Logical, method: str, target: str, header: Callable[[str], str | None]
    ) -> tuple[Pick | None, Routed | None]:
        """`Side.route_pick` for a codec that holds no `target` (one lookup by address)."""
        dst = logical.orig_dst
        held = self._targets.get(dst)
        if held is None:
            if len(self._targets) >= 4096:  # destinations come and go: bound the cache
                self._targets.clear()
            held = self._targets[dst] = RouteTarget(self, logical)
        return held.route_pick(method, target, header)

    def route(self, logical: Logical, method: str, target: str,
              header: Callable[[str], str | None]) -> Routed | None:  # fmt: skip
        """Which rule and backend `method target` to `logical` goes to (None: no routes)."""
        dest = self.discovery.destination(logical.orig_dst)
        parent = self._compiled(logical.orig_dst, dest.resolution).parent
        if parent is None:
            return None
        return self._route(parent, dest, method, target, header)

    def _compiled(self, dst: Addr, resolution: Resolution) -> _Compiled:
        """`dst`'s routes as `resolution` streams them now, compiled once per version."""
        version = resolution.route_updates
        compiled = self._compiled_by_dst.get(dst)
        if compiled is not None and compiled.resolution is resolution \
                and compiled.version == version:  # fmt: skip
            return compiled
        table = resolution.routes
        parent = self._compile(dst, table) if table is not None else None
        if len(self._compiled_by_dst) >= 4096:  # destinations come and go: bound the cache
            self._compiled_by_dst.clear()
        compiled = self._compiled_by_dst[dst] = _Compiled(resolution, version, parent)
        return compiled

    def _compile(self, dst: Addr, table: RouteTable) -> _Parent:
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
                dest = self.discovery.follow_backend(authority)  # its stream now, not later
                counted = stats.backend(ref.namespace, ref.name, port)
                backends.append(BackendPlan(authority, ref, counted, dest))
            budget = None
            if found.rule.retry is not None:
                key = (dst, route.namespace, route.name)
                budget = self._budgets.get(key)
                if budget is None:
                    budget = self._budgets[key] = RetryBudget(clock=self.clock)
            plans[id(found)] = RulePlan(found, tuple(backends), stats, budget)
        return _Parent(table, plans)

    def _route(self, parent: _Parent, dest: Destination, method: str, target: str,
               header: Callable[[str], str | None]) -> Routed:  # fmt: skip
        """The rule, backend and endpoint of one request under `parent` (`dest`: the
        destination's own service, current, served from while a backend has no answer)."""
        if not target.startswith("/"):  # absolute form (http://host/path): its path
            target = "/" + target.partition("://")[2].partition("/")[2]
        memo = parent.memo
        if memo is not None:
            plan = memo.get((method, target), _UNSEEN)
            if plan is _UNSEEN:
                plan = parent.plan(method, target)
        else:
            path, _, query = target.partition("?")
            found = parent.table.match(method, path, header, query)
            plan = parent.plans[id(found)] if found is not None else None
        if plan is None:
            return Routed(None, None, None, _NOT_FOUND)
        plan.stats.requests += 1
        if plan.budget is not None:
            plan.budget.request()
        if plan.rule.redirect is not None:
            return Routed(plan, None, None)
        backend = plan.only or plan.choose(self.rng)
        backend.stats.requests += 1
        backend_dest = backend.dest  # (`_pick`'s common case, inline)
        discovery = self.discovery
        if (backend_dest.last_used + 1.0 >= discovery.clock()
                and backend_dest.resolution.updates == backend_dest.version):  # fmt: skip
            pick = discovery.take_backend(backend_dest)
            if pick is not None and pick is not NO_ENDPOINTS:
                return Routed(plan, backend, pick)
        return self._pick(plan, backend, dest)  # (those answers took no ticket: ask again)

    def retry(self, routed: Routed, logical: Logical) -> Routed:
        """A new endpoint for a retry of `routed`, from the same backend."""
        assert routed.plan is not None and routed.backend is not None
        routed.backend.stats.requests += 1
        dest = self.discovery.destination(logical.orig_dst)
        return self._pick(routed.plan, routed.backend, dest)

    def retry_elsewhere(self, routed: Routed, logical: Logical, failed: Pick) -> Routed:
        """`retry` for an attempt that got no answer: `failed` (its pick) ends as a failure
        (the balancer ejects that endpoint), and if the balancer offered that same endpoint
        while it has another one, the retry goes to the other. A backend with only that
        one keeps it: the retry goes there, as to a replica that may just have restarted."""
        again = self.retry(routed, logical)
        failed.fail()
        if again.pick is None or again.pick.endpoint.addr != failed.endpoint.addr:
            return again
        assert routed.plan is not None and routed.backend is not None
        other = self._pick(routed.plan, routed.backend,
                           self.discovery.destination(logical.orig_dst))  # fmt: skip
        if other.pick is None or other.pick.ticket is None:  # (none left, or pass-through)
            if other.pick is not None:
                other.pick.cancel()
            return again
        again.pick.cancel()
        return other

    def _pick(self, plan: RulePlan, backend: BackendPlan, dest: Destination) -> Routed:
        discovery = self.discovery
        backend_dest = backend.dest
        if (backend_dest.last_used + 1.0 < discovery.clock()
                or backend_dest.resolution.updates != backend_dest.version):  # fmt: skip
            backend_dest = backend.dest = discovery.current(backend_dest)
        pick = discovery.take_backend(backend_dest)
        if pick is None:  # the backend's stream has not answered yet: serve from the parent
            pick = discovery.take(dest)
            if isinstance(pick, Empty):
                return Routed(plan, backend, None, (503, pick.reason))
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
