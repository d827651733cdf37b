"""The real proxy's outbound path with discovery: per-request balancing on loopback.

A destination server (loopback) knows Service `web` (cluster IP 127.43.0.10:80) with two
loopback backends. The proxy's outbound listener gets its "original destination" from a
patched `original_dst` (iptables would set it; no root here), so the proxy resolves
127.43.0.10:80 through discovery exactly as it would in a pod.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from tests.unit.proxy.sockets.harness import Client, proxy

from lacewing.controller.destination import (
    Backend,
    DestinationServer,
    Directory,
    Hub,
    PodInfo,
    Service,
    ServicePort,
)
from lacewing.proxy import accept
from lacewing.proxy.config import Addr
from lacewing.proxy.discovery.outbound import OutboundDiscovery
from lacewing.proxy.server import ProxyServer

VIP = Addr("127.43.0.10", 80)


@dataclass
class App:
    """A keep-alive HTTP/1.1 app that says who it is, optionally after a delay."""

    name: str
    delay: float = 0.0
    requests: int = 0
    server: asyncio.Server | None = None
    port: int = 0
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self, host: str, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, host, port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for task in list(self.handlers):
                task.cancel()
            await asyncio.gather(*self.handlers, return_exceptions=True)
            await self.server.wait_closed()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                body = self.name.encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.handlers.discard(task)
            writer.close()


def directory(*apps: tuple[str, App]) -> Directory:
    backends = tuple(Backend(ip, True, {"http": app.port}, app.name) for ip, app in apps)
    web = Service("web", "shop", VIP.host, (ServicePort(80, 80, "http"),), backends)
    pods = tuple(PodInfo(app.name, "shop", ip, None, "Deployment", "web") for ip, app in apps)
    # (identity None: these loopback apps have no proxy, so the proxy connects in plaintext)
    return Directory((web,), pods)


@dataclass
class Bed:
    hub: Hub
    proxy: ProxyServer
    fast: App
    slow: App

    async def get(self, client: Client) -> tuple[int, bytes]:
        await client.send(b"GET / HTTP/1.1\r\nHost: web.shop\r\n\r\n")
        status, _, body = await client.response()
        return status, body


@pytest.fixture
async def bed(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bed]:
    fast, slow = App("web-fast"), App("web-slow", delay=0.1)  # (far outside TOLERANCE under load)
    await fast.start("127.0.0.1")
    await slow.start("127.0.0.2")
    hub = Hub()
    hub.publish(directory(("127.0.0.1", fast), ("127.0.0.2", slow)))
    destination = DestinationServer(hub, "127.0.0.1", 0, heartbeat=0.5)
    await destination.start()
    monkeypatch.setattr(accept, "original_dst", lambda sock: VIP)
    env = {"LACEWING_PROXY_DESTINATION_ADDR": f"127.0.0.1:{destination.bound_port}"}
    try:
        async with proxy(env) as server:
            discovery = server.sides[1].discovery
            assert isinstance(discovery, OutboundDiscovery)
            resolution = discovery.client.resolve(str(VIP))
            assert await resolution.first_answer(2.0)
            yield Bed(hub, server, fast, slow)
    finally:
        await destination.stop()
        await fast.stop()
        await slow.stop()


async def test_requests_on_one_connection_are_balanced_and_avoid_the_slow_replica(
    bed: Bed,
) -> None:
    client = await Client.open(bed.proxy.bound["outbound"].port)
    try:
        answers = [await bed.get(client) for _ in range(60)]
        assert {status for status, _ in answers} == {200}
        assert bed.fast.requests + bed.slow.requests == 60
        assert bed.fast.requests >= 55  # the slow replica is (nearly) avoided
        # Endpoints are picked per request, not per connection: the same client connection
        # follows a change of the endpoint set at its next request.
        bed.hub.publish(directory(("127.0.0.2", bed.slow)))
        await asyncio.sleep(0.2)
        assert [await bed.get(client) for _ in range(3)] == [(200, b"web-slow")] * 3
    finally:
        await client.close()
    discovery = bed.proxy.sides[1].discovery
    assert isinstance(discovery, OutboundDiscovery)
    for app, ip in ((bed.fast, "127.0.0.1"), (bed.slow, "127.0.0.2")):
        assert discovery.in_flight(Addr(ip, app.port)) == 0  # every request was released
    metrics = "\n".join(bed.proxy.metrics.render())
    assert 'dst_service="web"' in metrics and 'dst_pod="web-fast"' in metrics
    assert 'dst_deployment="web"' in metrics and 'dst_namespace="shop"' in metrics


async def test_a_dead_endpoint_is_taken_out_and_a_scale_down_is_followed(bed: Bed) -> None:
    await bed.fast.stop()  # the fast replica dies without the control plane knowing yet
    port = bed.proxy.bound["outbound"].port
    client = await Client.open(port)
    try:
        answers = []
        for _ in range(20):
            answers.append(await bed.get(client))
            if answers[-1][0] != 200:  # the proxy closes a connection after a 502
                await client.close()
                client = await Client.open(port)
        failures = [a for a in answers if a[0] != 200]
        discovery = bed.proxy.sides[1].discovery
        assert isinstance(discovery, OutboundDiscovery)
        assert discovery.in_flight(Addr("127.0.0.2", bed.slow.port)) == 0
        assert len(failures) <= 1  # the request in flight to it; then it is ejected
        assert all(body == b"web-slow" for status, body in answers if status == 200)
        bed.hub.publish(directory(("127.0.0.2", bed.slow)))
        await asyncio.sleep(0.2)
        assert [await bed.get(client) for _ in range(5)] == [(200, b"web-slow")] * 5
    finally:
        await client.close()


async def test_a_request_whose_endpoint_refuses_goes_to_the_next_pick(bed: Bed) -> None:
    # (found by the fault suite: a pod's proxy SIGKILLed failed the requests that were sent
    # to it after the kill, though nothing of them had reached it)
    client = await Client.open(bed.proxy.bound["outbound"].port)
    try:
        for _ in range(50):  # until the fast replica is the balancer's choice ...
            assert (await bed.get(client))[0] == 200
            if bed.fast.requests >= 8:
                break
        assert bed.fast.requests >= 8
        await bed.fast.stop()  # ... and refuses connections now; the control plane does not know
        answers = [await bed.get(client) for _ in range(20)]
        assert answers == [(200, b"web-slow")] * 20  # none failed, on one client connection
    finally:
        await client.close()
    discovery = bed.proxy.sides[1].discovery
    assert isinstance(discovery, OutboundDiscovery)
    assert discovery.in_flight(Addr("127.0.0.2", bed.slow.port)) == 0
    assert discovery.in_flight(Addr("127.0.0.1", bed.fast.port)) == 0


async def test_unknown_destinations_pass_through(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = App("outside")
    await outside.start("127.0.0.1")
    monkeypatch.setattr(accept, "original_dst", lambda sock: Addr("127.0.0.1", outside.port))
    client = await Client.open(bed.proxy.bound["outbound"].port)
    try:
        answers = [await bed.get(client) for _ in range(3)]
    finally:
        await client.close()
        with contextlib.suppress(Exception):
            await outside.stop()
    assert answers == [(200, b"outside")] * 3


async def test_requests_in_flight_count_against_an_endpoint_until_they_end(bed: Bed) -> None:
    discovery = bed.proxy.sides[1].discovery
    assert isinstance(discovery, OutboundDiscovery)
    bed.hub.publish(directory(("127.0.0.2", bed.slow)))
    slow = Addr("127.0.0.2", bed.slow.port)
    bed.slow.delay = 0.5
    await asyncio.sleep(0.2)
    client = await Client.open(bed.proxy.bound["outbound"].port)
    await client.send(b"GET / HTTP/1.1\r\nHost: web.shop\r\n\r\n")
    async with asyncio.timeout(1.0):
        while discovery.in_flight(slow) != 1:
            await asyncio.sleep(0.01)
    await client.close()  # the client gives up mid-request
    async with asyncio.timeout(1.0):
        while discovery.in_flight(slow) != 0:
            await asyncio.sleep(0.01)


async def test_concurrent_requests_spread_over_equal_replicas(bed: Bed) -> None:
    bed.fast.delay = bed.slow.delay = 0.02  # two equal replicas
    port = bed.proxy.bound["outbound"].port

    async def user() -> list[int]:
        client = await Client.open(port)
        try:
            return [(await bed.get(client))[0] for _ in range(6)]
        finally:
            await client.close()

    results = await asyncio.gather(*(user() for _ in range(10)))
    assert {s for statuses in results for s in statuses} == {200}
    assert bed.fast.requests + bed.slow.requests == 60
    assert min(bed.fast.requests, bed.slow.requests) >= 15


async def test_the_first_request_of_a_new_connection_is_balanced_and_labelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = App("web-0")
    await app.start("127.0.0.1")
    # The cluster IP is a loopback address nothing listens on: had the request gone out
    # before discovery answered, it would have been refused, never sent off the machine.
    vip = Addr("127.0.0.99", 80)
    web = Service("web", "shop", vip.host, (ServicePort(80, 80, "http"),),
                  (Backend("127.0.0.1", True, {"http": app.port}, app.name),))  # fmt: skip
    pod = PodInfo(app.name, "shop", "127.0.0.1", None, "Deployment", "web")
    hub = Hub()
    hub.publish(Directory((web,), (pod,)))
    destination = DestinationServer(hub, "127.0.0.1", 0, heartbeat=0.5)
    await destination.start()
    monkeypatch.setattr(accept, "original_dst", lambda sock: vip)
    env = {"LACEWING_PROXY_DESTINATION_ADDR": f"127.0.0.1:{destination.bound_port}"}
    try:
        async with proxy(env) as server:  # no waiting for discovery: the request comes first
            client = await Client.open(server.bound["outbound"].port)
            try:
                await client.send(b"GET / HTTP/1.1\r\nHost: web.shop\r\n\r\n")
                status, _, body = await client.response()
            finally:
                await client.close()
            requests = [m for m in server.metrics.render() if m.startswith("request_total")]
    finally:
        await destination.stop()
        await app.stop()
    assert (status, body) == (200, b"web-0")
    assert len(requests) == 1, requests  # one edge, not one without dst_* labels and one with
    assert 'dst_service="web"' in requests[0] and 'dst_pod="web-0"' in requests[0]


async def test_an_unreachable_destination_delays_a_new_connection_by_the_bounded_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outside = App("outside")
    await outside.start("127.0.0.1")
    monkeypatch.setattr(accept, "original_dst", lambda sock: Addr("127.0.0.1", outside.port))
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # never answers
    port = silent.sockets[0].getsockname()[1]
    env = {
        "LACEWING_PROXY_DESTINATION_ADDR": f"127.0.0.1:{port}",
        "LACEWING_PROXY_DISCOVERY_WAIT": "300ms",
    }
    try:
        async with proxy(env) as server:
            loop = asyncio.get_running_loop()
            client = await Client.open(server.bound["outbound"].port)
            try:
                started = loop.time()
                await client.send(b"GET / HTTP/1.1\r\nHost: outside\r\n\r\n")
                first = await client.response()
                waited = loop.time() - started
                await client.send(b"GET / HTTP/1.1\r\nHost: outside\r\n\r\n")
                second = await client.response()
            finally:
                await client.close()
            # a client that half-closes while its connection waits still gets its answer
            client = await Client.open(server.bound["outbound"].port)
            try:
                await client.send(b"GET / HTTP/1.1\r\nHost: outside\r\n\r\n")
                client.writer.write_eof()
                half_closed = await client.response()
                assert await client.closed_by_peer(2.0)  # and the proxy passes the EOF on
            finally:
                await client.close()
    finally:
        silent.close()
        await outside.stop()
    assert first[0] == second[0] == half_closed[0] == 200 and first[2] == b"outside"
    assert 0.25 <= waited < 2.0  # waited for discovery, but only as long as configured
