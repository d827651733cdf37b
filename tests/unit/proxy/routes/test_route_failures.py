"""HTTP/1 requests that got no answer, and Services with no endpoints, through the real proxy.

The loopback bed of `test_route_proxy` (a destination server, the proxy's outbound listener
taking 127.43.0.10:80 as every connection's original destination, loopback apps): a route on
`web` sends to `pair` (the canary app and the bad one, two endpoints) and retries 5xx, while
the bad app refuses connections, resets them, closes them or answers garbage. What is
asserted is what the client and the apps saw, the balancer's state and the proxy's /metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from tests.unit.proxy.routes.test_route_proxy import VIP, Bed, bed, request, route, to
from tests.unit.proxy.sockets.harness import Client

from lacewing.controller.destination import Backend, Directory, PodInfo, Service, ServicePort
from lacewing.proxy.config import Addr
from lacewing.proxy.discovery.outbound import OutboundDiscovery

__all__ = ["bed"]  # (the fixture, imported for these tests)

PAIR = "pair.shop.svc.cluster.local:80"
RETRY = {"retry.lacewing.io/http": "5xx", "retry.lacewing.io/limit": "2"}


def metric(bed: Bed, family: str, **wanted: str) -> float:
    total = 0.0
    for line in bed.metrics().splitlines():
        if line.startswith(family + "{"):
            labels = line[len(family) + 1 : line.rindex("}")]
            if all(f'{k}="{v}"' in labels for k, v in wanted.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def discovery_of(bed: Bed) -> OutboundDiscovery:
    discovery = bed.proxy.sides[1].discovery
    assert isinstance(discovery, OutboundDiscovery)
    return discovery


async def retried_pair(bed: Bed, broken: str, *, publish: bool = True, **annotations: str
                       ) -> None:  # fmt: skip
    bad = bed.apps["bad"]
    bad.fail_every, bad.broken = 0, broken
    if not publish:
        return
    bed.publish(route("pair-retry", [{"backendRefs": to(("pair", 1))}],
                      **(annotations or RETRY)))  # fmt: skip
    await bed.routes_applied()


async def gets(bed: Bed, count: int) -> Counter[int]:
    client = await Client.open(bed.port)
    try:
        return Counter([(await request(client))[0] for _ in range(count)])
    finally:
        await client.close()


@pytest.mark.parametrize("broken", ["reset", "close", "garbage"])
async def test_requests_reset_closed_or_answered_garbage_are_retried_on_another_endpoint(
    bed: Bed, broken: str
) -> None:
    bad, good = bed.apps["bad"], bed.apps["canary"]
    await retried_pair(bed, broken)
    statuses = await gets(bed, 100)
    assert statuses == {200: 100}, statuses
    retries = metric(bed, "outbound_http_route_retry_requests_total", route_name="pair-retry")
    # every attempt that reached the bad app failed and was retried once, on the canary
    assert bad.requests >= 1 and retries == bad.requests, (bad.requests, retries)
    assert good.requests == 100
    # the balancer was told: the bad endpoint failed (ejected), it did not answer
    assert discovery_of(bed).ejected_backends(PAIR) == [Addr("127.0.0.5", bad.port)]
    assert metric(bed, "outbound_http_route_retry_successes_total",
                  route_name="pair-retry") == retries  # fmt: skip
    assert metric(bed, "outbound_http_route_backend_requests_total", route_name="pair-retry",
                  backend_name="pair") == 100 + retries  # fmt: skip


async def test_a_refused_connection_is_retried_and_its_endpoint_ejected(bed: Bed) -> None:
    bad = bed.apps["bad"]
    await retried_pair(bed, "")
    port = bad.port
    await bad.stop()  # nothing listens there now: connection refused
    statuses = await gets(bed, 100)
    assert statuses == {200: 100}, statuses
    retries = metric(bed, "outbound_http_route_retry_requests_total", route_name="pair-retry")
    assert retries >= 1
    assert discovery_of(bed).ejected_backends(PAIR) == [Addr("127.0.0.5", port)]
    # the request that met the refusal is counted once, as the 200 its retry got
    assert metric(bed, "outbound_http_route_request_statuses_total", route_name="pair-retry",
                  http_status="200") == 100  # fmt: skip


async def test_a_backend_with_one_endpoint_retries_on_it(bed: Bed) -> None:
    web = bed.apps["web"]
    web.broken = "first"  # a replica that reset one request (say, as it restarted)
    bed.publish(route("web-retry", [{"backendRefs": to(("web", 1))}], **RETRY))
    await bed.routes_applied()
    assert await gets(bed, 1) == {200: 1}
    assert web.requests == 2  # ejected by the failure, but the only one: the retry went there
    assert metric(bed, "outbound_http_route_retry_requests_total", route_name="web-retry") == 1


async def test_no_retry_for_a_body_over_64_kib(bed: Bed) -> None:
    bad, good = bed.apps["bad"], bed.apps["canary"]
    good.broken = "reset"  # both endpoints of the pair reset every request
    await retried_pair(bed, "reset")
    client = await Client.open(bed.port)
    try:
        status, headers, _ = await request(client, method="POST", body=b"x" * (100 * 1024))
    finally:
        await client.close()
    assert status == 502 and headers["l5d-proxy-error"] == "endpoint closed the connection"
    assert bad.methods["POST"] + good.methods["POST"] == 1  # 100 KiB is more than is kept
    await asyncio.sleep(1.6)  # both endpoints back from their ejection
    client = await Client.open(bed.port)
    try:
        status, _, _ = await request(client, method="POST", body=b"x" * 1024)
    finally:
        await client.close()
    assert status == 502
    # 1 KiB is kept: retried (limit 2: up to 3 attempts while the balancer has an endpoint)
    assert 3 <= bad.methods["POST"] + good.methods["POST"] <= 4


async def test_no_retry_when_the_policy_does_not_name_502(bed: Bed) -> None:
    bad, good = bed.apps["bad"], bed.apps["canary"]
    good.broken = "reset"
    await retried_pair(bed, "reset", **{"retry.lacewing.io/http": "503"})
    client = await Client.open(bed.port)
    try:
        status, _, _ = await request(client)
    finally:
        await client.close()
    assert status == 502
    assert bad.methods["GET"] + good.methods["GET"] == 1


async def test_a_pooled_connection_the_app_dropped_is_resent_once_without_any_route(
    bed: Bed,
) -> None:
    web = bed.apps["web"]
    web.broken = "once"  # every connection serves one request; the next one on it is dropped
    client = await Client.open(bed.port)
    try:
        first, _, _ = await request(client)
        second, _, body = await request(client)  # on the pooled connection: dropped, resent
        post, _, _ = await request(client, method="POST", body=b"y" * 10)
    finally:
        await client.close()
    assert (first, second, body) == (200, 200, b"web -")
    assert web.methods["GET"] == 3  # the dropped one, and the same request on a new connection
    # a request with a body is not resent by the pool (it may have been processed)
    assert post == 502 and web.methods["POST"] == 1


async def _empty_web(bed: Bed) -> None:
    """Publish `web` with no endpoints and wait until the proxy's discovery has none."""
    port = (ServicePort(80, 80, "http"),)
    bed.hub.publish(Directory((Service("web", "shop", VIP.host, port, ()),), ()))
    discovery = discovery_of(bed)
    for _ in range(200):
        if not discovery.endpoints(VIP):
            break
        await asyncio.sleep(0.005)


async def test_a_service_with_no_endpoints_answers_503_at_once_and_heals(bed: Bed) -> None:
    web = bed.apps["web"]
    await _empty_web(bed)
    discovery = discovery_of(bed)
    await asyncio.sleep(1.1)  # past the discovery wait (1 s) a new connection gives it
    client = await Client.open(bed.port)
    try:
        started = time.monotonic()
        status, headers, _ = await request(client)
        elapsed = time.monotonic() - started
        again, _, _ = await request(client)  # the connection stays open
    finally:
        await client.close()
    assert status == 503 and again == 503, (status, again)
    assert headers["l5d-proxy-error"] == "service web has no endpoints"
    assert elapsed < 0.5, elapsed  # fails fast: no wait, no connect to the cluster IP
    assert metric(bed, "response_total", direction="outbound", dst_namespace="shop",
                  dst_service="web", status_code="503") == 2  # fmt: skip
    assert web.requests == 0

    # opaque TCP to it goes to the original destination, as without discovery (a TLS client
    # of the API server's Service, whose endpoints discovery may not see, must get through);
    # nothing listens at this bed's cluster IP on loopback: refused, so closed at once
    reader, writer = await asyncio.open_connection("127.0.0.1", bed.port)
    try:
        started = time.monotonic()
        writer.write(b"\x00\x01not http at all\r\n\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(100), 3.0) == b""
        assert time.monotonic() - started < 0.5
    finally:
        writer.close()

    # an endpoint comes back: requests go to it again
    backend = Backend("127.0.0.1", True, {"http": web.port}, "web")
    healed = Service("web", "shop", VIP.host, (ServicePort(80, 80, "http"),), (backend,))
    bed.hub.publish(Directory((healed,), (PodInfo("web", "shop", "127.0.0.1"),)))
    for _ in range(200):
        if discovery.endpoints(VIP):
            break
        await asyncio.sleep(0.005)
    assert await gets(bed, 5) == {200: 5}


async def test_a_new_connection_waits_a_moment_for_a_service_that_just_lost_its_endpoints(
    bed: Bed,
) -> None:
    web = bed.apps["web"]
    port = (ServicePort(80, 80, "http"),)
    await _empty_web(bed)
    client = await Client.open(bed.port)
    try:
        started = time.monotonic()
        asked = asyncio.ensure_future(request(client))
        await asyncio.sleep(0.3)  # a replica comes back (a rollout's moment with none)
        backend = Backend("127.0.0.1", True, {"http": web.port}, "web")
        bed.hub.publish(Directory((Service("web", "shop", VIP.host, port, (backend,)),),
                                  (PodInfo("web", "shop", "127.0.0.1"),)))  # fmt: skip
        status, _, body = await asyncio.wait_for(asked, 3.0)
        waited = time.monotonic() - started
    finally:
        await client.close()
    assert (status, body) == (200, b"web -")
    assert 0.3 <= waited < 1.0, waited  # held until the endpoint came, not the whole wait

    await _empty_web(bed)
    client = await Client.open(bed.port)
    try:
        started = time.monotonic()
        status, _, _ = await request(client)  # none comes back: 503 once the wait is over
        waited = time.monotonic() - started
    finally:
        await client.close()
    assert status == 503 and 0.9 <= waited < 1.5, (status, waited)
