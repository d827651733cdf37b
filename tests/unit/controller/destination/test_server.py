"""The streaming API on loopback: complete state first, then only differences, pushed at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from tests.support.destination import Stream, addresses

from lacewing.controller.destination import (
    Backend,
    DestinationServer,
    Directory,
    Hub,
    PodInfo,
    Service,
    ServicePort,
)


def directory(*ips: str, ready: tuple[str, ...] | None = None) -> Directory:
    backends = tuple(Backend(ip, ready is None or ip in ready) for ip in ips)
    web = Service("web", "shop", "10.43.0.10", (ServicePort(80, 8080, "http"),), backends)
    pods = tuple(PodInfo(f"web-{ip.rsplit('.', 1)[1]}", "shop", ip) for ip in ips)
    return Directory((web,), pods)


@pytest.fixture
async def served() -> AsyncIterator[tuple[Hub, DestinationServer]]:
    hub = Hub()
    server = DestinationServer(hub, "127.0.0.1", 0, heartbeat=0.2)
    await server.start()
    yield hub, server
    await server.stop()


async def test_stream_starts_with_state_then_pushes_differences(
    served: tuple[Hub, DestinationServer],
) -> None:
    hub, server = served
    hub.publish(directory("10.42.0.1", "10.42.0.2"))
    stream = await Stream.open(server.bound_port, "web.shop.svc.cluster.local:80")
    assert stream.status == 200
    first = await stream.next()
    assert first["type"] == "ADDED"
    assert addresses(first) == ["10.42.0.1:8080", "10.42.0.2:8080"]
    assert first["endpoints"][0]["labels"] == {
        "namespace": "shop",
        "pod": "web-1",
        "service": "web",
    }

    hub.publish(directory("10.42.0.2", "10.42.0.3"))  # scale: one goes, one comes
    gone, new = await stream.next(), await stream.next()
    assert (gone["type"], addresses(gone)) == ("REMOVED", ["10.42.0.1:8080"])
    assert (new["type"], addresses(new)) == ("ADDED", ["10.42.0.3:8080"])

    hub.publish(directory("10.42.0.2", "10.42.0.3", ready=("10.42.0.3",)))  # one turns unready
    unready = await stream.next()
    assert (unready["type"], addresses(unready)) == ("REMOVED", ["10.42.0.2:8080"])

    hub.publish(directory())  # the Service has none left: its own labels come along
    assert await stream.next() == {"type": "NO_ENDPOINTS", "exists": True,
                                   "labels": {"namespace": "shop", "service": "web"}}  # fmt: skip
    await stream.close()


async def test_a_stream_opened_before_any_source_waits_then_gets_the_state(
    served: tuple[Hub, DestinationServer],
) -> None:
    hub, server = served
    stream = await Stream.open(server.bound_port, "web:80", namespace="shop")
    with pytest.raises(TimeoutError):
        await stream.next(timeout=0.3)  # heartbeats only: nothing is known yet
    hub.publish(directory("10.42.0.1"))
    assert addresses(await stream.next()) == ["10.42.0.1:8080"]
    await stream.close()


async def test_unknown_destinations_and_bad_requests(
    served: tuple[Hub, DestinationServer],
) -> None:
    hub, server = served
    hub.publish(directory("10.42.0.1"))
    stream = await Stream.open(server.bound_port, "192.0.2.7:443")
    assert await stream.next() == {"type": "NO_ENDPOINTS", "exists": False}
    await stream.close()
    by_ip = await Stream.open(server.bound_port, "10.43.0.10:80")
    assert addresses(await by_ip.next()) == ["10.42.0.1:8080"]
    await by_ip.close()
    bad = await Stream.open(server.bound_port, "web:80")  # no namespace to complete it
    assert bad.status == 400
    body = await bad.next()
    assert "namespace" in body["error"] and "authority=" in body["hint"]
    await bad.close()


async def test_ready_answers_once_a_source_published(
    served: tuple[Hub, DestinationServer],
) -> None:
    hub, server = served

    async def ready_status() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
        writer.write(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
        status = int((await reader.readline()).split()[1])
        writer.close()
        await writer.wait_closed()
        return status

    assert await ready_status() == 503
    hub.publish(Directory())
    assert await ready_status() == 200
