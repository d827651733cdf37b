"""The proxy's discovery client against a real destination server on loopback."""

from __future__ import annotations

import asyncio
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
from lacewing.proxy.discovery import DestinationClient, Resolution
from lacewing.proxy.discovery.outbound import OutboundDiscovery


def directory(*ips: str) -> Directory:
    web = Service(
        "web",
        "shop",
        "10.43.0.10",
        (ServicePort(80, 8080, "http"),),
        tuple(Backend(ip) for ip in ips),
    )
    return Directory((web,))


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def start(hub: Hub, port: int = 0) -> DestinationServer:
    server = DestinationServer(hub, "127.0.0.1", port, heartbeat=0.2)
    await server.start()
    return server


@pytest.fixture
async def client_and_server() -> AsyncIterator[tuple[DestinationClient, DestinationServer, Hub]]:
    hub = Hub()
    hub.publish(directory("10.42.0.1", "10.42.0.2"))
    server = await start(hub)
    client = DestinationClient(
        "127.0.0.1",
        server.bound_port,
        namespace="shop",
        clock=Clock(),
        backoff_first=0.05,
        backoff_cap=0.2,
        read_timeout=1.0,
    )
    yield client, server, hub
    await client.close()
    await server.stop()


def ips(resolution: Resolution) -> list[str]:
    return [e.address for e in resolution.endpoint_list()]


async def until(predicate: object, timeout: float = 1.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_follows_changes_and_caches_per_authority(
    client_and_server: tuple[DestinationClient, DestinationServer, Hub],
) -> None:
    client, _, hub = client_and_server
    web = client.resolve("web:80")
    assert await web.first_answer(1.0)
    assert web.exists and ips(web) == ["10.42.0.1", "10.42.0.2"]
    assert client.resolve("web:80") is web  # one stream per authority
    hub.publish(directory("10.42.0.2", "10.42.0.3"))
    await until(lambda: ips(web) == ["10.42.0.2", "10.42.0.3"])
    outside = client.resolve("192.0.2.9:443")
    assert await outside.first_answer(1.0)
    assert outside.exists is False and ips(outside) == []
    bad = client.resolve("not an authority")
    assert await bad.first_answer(1.0) and bad.exists is False


async def test_keeps_last_endpoints_while_the_server_is_down_and_resumes_after_restart(
    client_and_server: tuple[DestinationClient, DestinationServer, Hub],
) -> None:
    client, server, _ = client_and_server
    port = server.bound_port
    web = client.resolve("web.shop.svc.cluster.local:80")
    assert await web.first_answer(1.0)
    await server.stop()  # the control plane dies
    await until(lambda: not web.connected)
    await asyncio.sleep(0.3)  # several failed reconnects later...
    assert ips(web) == ["10.42.0.1", "10.42.0.2"]  # ...the proxy still has its endpoints

    restarted_hub = Hub()  # a new control plane process, which learned of a scale-down
    restarted_hub.publish(directory("10.42.0.2"))
    restarted = await start(restarted_hub, port)
    try:
        await until(lambda: ips(web) == ["10.42.0.2"], timeout=2.0)
        assert web.connected and client.connects == 2
    finally:
        await client.close()
        await restarted.stop()


async def test_idle_resolutions_are_evicted(
    client_and_server: tuple[DestinationClient, DestinationServer, Hub],
) -> None:
    client, _, _ = client_and_server
    clock = client.clock
    assert isinstance(clock, Clock)
    busy, idle = client.resolve("web:80"), client.resolve("10.43.0.10:80")
    assert await busy.first_answer(1.0) and await idle.first_answer(1.0)
    clock.now += 45
    client.resolve("web:80")  # used again
    clock.now += 30
    assert await client.evict_idle() == ["10.43.0.10:80"]
    assert client.cached() == ["web:80"]
    fresh = client.resolve("10.43.0.10:80")
    assert fresh is not idle and await fresh.first_answer(1.0)


async def test_outbound_follows_a_destination_again_after_its_stream_was_evicted(
    client_and_server: tuple[DestinationClient, DestinationServer, Hub],
) -> None:
    client, _, hub = client_and_server
    clock = client.clock
    assert isinstance(clock, Clock)
    outbound = OutboundDiscovery(client, clock=clock)
    vip = Addr("10.43.0.10", 80)
    assert outbound.endpoint(vip) == vip  # no answer yet: pass through
    assert await client.resolve(str(vip)).first_answer(1.0)
    assert outbound.endpoint(vip).host in {"10.42.0.1", "10.42.0.2"}
    clock.now += 120  # unused for two minutes: the stream is dropped
    assert await client.evict_idle() == [str(vip)]
    hub.publish(directory("10.42.0.3"))
    assert outbound.endpoint(vip).host in {"10.42.0.1", "10.42.0.2"}  # last known meanwhile
    await until(lambda: outbound.endpoint(vip).host == "10.42.0.3")
    (only,) = outbound.endpoints(vip)  # gone endpoints are forgotten
    assert only.addr == Addr("10.42.0.3", 8080)
    assert only.labels == (("dst_namespace", "shop"), ("dst_service", "web"))
    assert outbound.identity(Addr("10.42.0.3", 8080)) is None  # no pod info: plaintext


async def test_outbound_knows_the_identity_to_expect_from_each_endpoint(
    client_and_server: tuple[DestinationClient, DestinationServer, Hub],
) -> None:
    client, _, hub = client_and_server
    web = Service(
        "web", "shop", "10.43.0.10", (ServicePort(80, 8080, "http"),), (Backend("10.42.0.5"),)
    )
    identity = "web.shop.serviceaccount.identity.lacewing.cluster.local"
    hub.publish(Directory((web,), (PodInfo("web-0", "shop", "10.42.0.5", identity),)))
    outbound = OutboundDiscovery(client, clock=client.clock)
    vip = Addr("10.43.0.10", 80)
    outbound.endpoint(vip)
    await until(lambda: outbound.endpoint(vip) == Addr("10.42.0.5", 8080))
    got = outbound.identity(Addr("10.42.0.5", 8080))
    assert got is not None and got.name == identity
