"""The route layer a connection holds (`Router.target`) answers as looking everything up would.

A stub destination client hands out `Resolution`s filled the way its stream fills them, and a
test clock moves time: a held target must follow a new route table, a stream replaced after
eviction, and a backend that loses its endpoints; the memo of a table must never answer for
a table that matches headers.
"""

from __future__ import annotations

import random
from typing import Any

from lacewing.core.discovery import Endpoint, EndpointSet
from lacewing.core.route_table import RouteTable
from lacewing.core.routes import parse_route
from lacewing.proxy.config import Addr
from lacewing.proxy.discovery.client import DestinationClient, Resolution
from lacewing.proxy.discovery.outbound import OutboundDiscovery
from lacewing.proxy.metrics.routes import RouteMetrics
from lacewing.proxy.routes import Router
from lacewing.proxy.routes.router import MEMO
from lacewing.proxy.targets import HTTP1, Logical

VIP = Addr("10.43.0.10", 80)
WEB = "web.shop.svc.cluster.local:80"
CANARY = "canary.shop.svc.cluster.local:80"


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


class Stub(DestinationClient):
    """Resolutions by authority, replaced by hand (as an evicted stream's successor)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__("127.0.0.1", 1, clock=clock)
        self.answers: dict[str, Resolution] = {}

    def resolve(self, authority: str) -> Resolution:
        found = self.answers.get(authority)
        if found is None:
            found = self.answers[authority] = Resolution(authority, self.clock())
        found.last_used = self.clock()
        return found


def pods(resolution: Resolution, *hosts: str) -> None:
    resolution._set(EndpointSet(Endpoint(h, 8080) for h in hosts), True)


def route(name: str, backend: str, **match: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"parentRefs": [{"kind": "Service", "group": "", "name": "web", "port": 80}],
                 "rules": [{"matches": [match or {"path": {"type": "PathPrefix", "value": "/"}}],
                            "backendRefs": [{"name": backend, "port": 80}]}]},
    }  # fmt: skip


def setup() -> tuple[Clock, Stub, Router]:
    clock = Clock()
    stub = Stub(clock)
    pods(stub.resolve(str(VIP)), "10.42.0.1")
    pods(stub.resolve(WEB), "10.42.0.1")
    pods(stub.resolve(CANARY), "10.42.0.9")
    discovery = OutboundDiscovery(stub, clock=clock, rng=random.Random(1))
    return clock, stub, Router(discovery, RouteMetrics(), rng=random.Random(1), clock=clock)


def no_header(name: str) -> str | None:
    return None


def backend_of(router: Router, held: Any, target: str = "/") -> str | None:
    pick, routed = held.route_pick("GET", target, no_header)
    assert pick is not None
    pick.cancel()
    return routed.backend.ref.name if routed is not None and routed.backend else None


def test_a_held_target_follows_a_new_route_table_and_its_removal() -> None:
    _clock, stub, router = setup()
    held = router.target(Logical(VIP, HTTP1))
    assert backend_of(router, held) is None  # no routes: the Service's own endpoint
    stub.resolve(str(VIP))._set_routes([parse_route(route("all", "canary"))])
    assert backend_of(router, held) == "canary"
    stub.resolve(str(VIP))._set_routes([parse_route(route("all", "web"))])
    assert backend_of(router, held) == "web"
    stub.resolve(str(VIP))._set_routes([])
    assert backend_of(router, held) is None


def test_a_stream_replaced_after_eviction_is_followed_even_at_the_same_version() -> None:
    clock, stub, router = setup()
    held = router.target(Logical(VIP, HTTP1))
    first = stub.resolve(str(VIP))
    first._set_routes([parse_route(route("all", "canary"))])
    assert backend_of(router, held) == "canary"
    fresh = Resolution(str(VIP), clock())  # the evicted stream's successor: version 1 again
    pods(fresh, "10.42.0.1")
    fresh._set_routes([parse_route(route("all", "web"))])
    assert fresh.route_updates == first.route_updates
    stub.answers[str(VIP)] = fresh
    router.discovery.evict_idle(0.0)
    clock.now += 2.0  # the held destination is looked up again at most once a second
    assert backend_of(router, held) == "web"


def test_a_backend_that_loses_its_endpoints_answers_503_through_a_held_target() -> None:
    _clock, stub, router = setup()
    held = router.target(Logical(VIP, HTTP1))
    stub.resolve(str(VIP))._set_routes([parse_route(route("all", "canary"))])
    assert backend_of(router, held) == "canary"
    stub.resolve(CANARY)._set(EndpointSet(), True)
    pick, routed = held.route_pick("GET", "/", no_header)
    assert pick is None and routed is not None and routed.error is not None
    assert routed.error[0] == 503


def test_the_memo_is_off_for_a_table_with_header_matches() -> None:
    _clock, stub, router = setup()
    header_route = route("beta", "canary", path={"type": "PathPrefix", "value": "/"},
                         headers=[{"name": "x-beta", "value": "1"}])  # fmt: skip
    table = [parse_route(header_route), parse_route(route("all", "web"))]
    assert RouteTable(table).uses_headers
    stub.resolve(str(VIP))._set_routes(table)
    held = router.target(Logical(VIP, HTTP1))
    for beta in ("1", None, "1", None):

        def header(name: str, beta: str | None = beta) -> str | None:
            return beta if name == "x-beta" else None

        pick, routed = held.route_pick("GET", "/same", header)
        assert pick is not None and routed is not None and routed.backend is not None
        pick.cancel()
        assert routed.backend.ref.name == ("canary" if beta else "web")


def test_the_memo_answers_as_the_table_and_stays_bounded() -> None:
    _clock, stub, router = setup()
    routes = [route(f"r{i}", "canary" if i % 2 else "web",
                    path={"type": "PathPrefix", "value": f"/r{i}"}) for i in range(4)]  # fmt: skip
    stub.resolve(str(VIP))._set_routes([parse_route(r) for r in routes])
    held = router.target(Logical(VIP, HTTP1))
    for n in range(MEMO * 2 + 5):
        target = f"/r{n % 5}/{n}?q={n % 3}"
        pick, routed = held.route_pick("GET", target, no_header)
        assert routed is not None
        if n % 5 == 4:  # /r4 matches no route
            assert pick is None and routed.error == (404, "no route matches this request")
        else:
            assert pick is not None and routed.backend is not None
            pick.cancel()
            assert routed.backend.ref.name == ("canary" if n % 5 % 2 else "web")
    compiled = router._compiled(VIP, stub.resolve(str(VIP)))
    assert compiled.parent is not None and compiled.parent.memo is not None
    assert len(compiled.parent.memo) <= MEMO
