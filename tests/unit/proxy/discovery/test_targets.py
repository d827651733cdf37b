"""Discovery's typed targets: each Service its own balancer and labels, tickets end once.

Against a real destination server on loopback (no proxy sockets): two Services select the
same pod, which must stay two endpoints with their own load, failures and `dst_*` labels.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from lacewing.controller.destination import (
    Backend,
    DestinationServer,
    Directory,
    Hub,
    PodInfo,
    Service,
    ServicePort,
)
from lacewing.proxy.config import Addr
from lacewing.proxy.discovery import DestinationClient
from lacewing.proxy.discovery.outbound import OutboundDiscovery
from lacewing.proxy.targets import HTTP1, OPAQUE, Logical

WEB, CANARY = Addr("10.43.0.10", 80), Addr("10.43.0.11", 80)
POD, OTHER = Addr("10.42.0.5", 8080), Addr("10.42.0.6", 8080)


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def shared_pod() -> Directory:
    """`web` and `web-canary` both select pod web-0; `web` also has web-1."""
    port = (ServicePort(80, 8080, "http"),)
    web = Service("web", "shop", WEB.host, port, (Backend(POD.host), Backend(OTHER.host)))
    canary = Service("web-canary", "shop", CANARY.host, port, (Backend(POD.host),))
    pods = (
        PodInfo("web-0", "shop", POD.host, None, "Deployment", "web"),
        PodInfo("web-1", "shop", OTHER.host, None, "Deployment", "web"),
    )
    return Directory((web, canary), pods)


@pytest.fixture
async def discovery() -> AsyncIterator[OutboundDiscovery]:
    hub = Hub()
    hub.publish(shared_pod())
    server = DestinationServer(hub, "127.0.0.1", 0, heartbeat=0.2)
    await server.start()
    clock = Clock()
    client = DestinationClient("127.0.0.1", server.bound_port, namespace="shop", clock=clock)
    outbound = OutboundDiscovery(client, clock=clock, rng=random.Random(7))
    try:
        for vip in (WEB, CANARY):
            assert not outbound.answered(vip)
            assert await outbound.wait(vip, 2.0)
            assert outbound.answered(vip)
        yield outbound
    finally:
        await outbound.close()
        await server.stop()


def _service(labels: tuple[tuple[str, str], ...]) -> str:
    return dict(labels)["dst_service"]


async def test_two_services_selecting_one_pod_keep_their_own_labels(
    discovery: OutboundDiscovery,
) -> None:
    for _ in range(20):
        pick = discovery.pick(Logical(CANARY, HTTP1))
        assert pick.endpoint.addr == POD
        assert _service(pick.endpoint.labels) == "web-canary"
        pick.done(True, 0.001)
        pick = discovery.pick(Logical(WEB, HTTP1))
        assert pick.endpoint.addr in (POD, OTHER)
        assert _service(pick.endpoint.labels) == "web"  # never web-canary's
        assert dict(pick.endpoint.labels)["dst_pod"] in ("web-0", "web-1")
        pick.done(True, 0.001)


async def test_two_services_selecting_one_pod_keep_their_own_load_and_failures(
    discovery: OutboundDiscovery,
) -> None:
    # Busy through web-canary: web's balancer does not see that load ...
    held = [discovery.pick(Logical(CANARY, HTTP1)) for _ in range(50)]
    web_picks = [discovery.pick(Logical(WEB, HTTP1)) for _ in range(40)]
    to_pod = sum(1 for p in web_picks if p.endpoint.addr == POD)
    assert 10 <= to_pod <= 30  # web still spreads over both of its pods
    for pick in held + web_picks:
        pick.cancel()
    assert discovery.in_flight(POD) == 0
    # ... and a failure seen through web ejects the pod from web only.
    for _ in range(40):
        pick = discovery.pick(Logical(WEB, HTTP1))
        if pick.endpoint.addr == POD:
            pick.fail()
            break
        pick.done(True, 0.001)
    assert {discovery.pick(Logical(WEB, HTTP1)).endpoint.addr for _ in range(20)} == {OTHER}
    canary = discovery.pick(Logical(CANARY, OPAQUE))
    assert canary.endpoint.addr == POD and canary.ticket is not None


async def test_a_probe_that_ends_without_an_outcome_does_not_leave_the_pod_unused(
    discovery: OutboundDiscovery,
) -> None:
    clock = discovery.clock
    assert isinstance(clock, Clock)
    first = discovery.pick(Logical(CANARY, HTTP1))
    first.fail()  # its only endpoint is ejected: requests pass through to the VIP
    assert discovery.pick(Logical(CANARY, HTTP1)).endpoint.addr == CANARY
    clock.now += 1.5  # the backoff elapsed: the next request probes the pod
    probe = discovery.pick(Logical(CANARY, HTTP1))
    assert probe.endpoint.addr == POD
    probe.cancel()  # the client went away before an answer (or the relay never said)
    probe.fail()  # an ended pick ignores what comes after
    again = discovery.pick(Logical(CANARY, HTTP1))
    assert again.endpoint.addr == POD  # probed again, not stuck "probing"
    again.done(True, 0.002)
    assert {discovery.pick(Logical(CANARY, HTTP1)).endpoint.addr for _ in range(10)} == {POD}


async def test_unused_destinations_are_evicted(discovery: OutboundDiscovery) -> None:
    clock = discovery.clock
    assert isinstance(clock, Clock)
    discovery.pick(Logical(WEB, HTTP1)).cancel()
    clock.now += 120
    assert discovery.evict_idle(60.0) == 2
    assert discovery.identity(POD) is None
