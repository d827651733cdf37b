"""Routes over the destination stream: streamed with the endpoints, the last valid kept."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.support.destination import Stream

from lacewing.controller.destination import (
    Backend,
    DestinationServer,
    Directory,
    Hub,
    RouteDoc,
    Service,
    ServicePort,
)
from lacewing.controller.destination.routes import accept
from lacewing.core.route_table import Request
from lacewing.proxy.discovery import DestinationClient


def route(name: str, weight: int = 1) -> dict[str, Any]:
    return {"apiVersion": "policy.lacewing.io/v1beta1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"parentRefs": [{"kind": "Service", "name": "web"}],
                     "rules": [{"backendRefs": [{"name": "web", "port": 80,
                                                 "weight": weight}]}]}}  # fmt: skip


SERVICES = (Service("web", "shop", "10.43.0.10", (ServicePort(80, 8080, "http"),),
                    (Backend("10.42.0.1"),)),)  # fmt: skip


def directory(*routes: dict[str, Any]) -> Directory:
    docs, _ = accept(list(routes), SERVICES)
    return Directory(SERVICES, (), docs)


async def test_routes_come_before_the_endpoints_and_only_when_they_change() -> None:
    hub = Hub()
    hub.publish(directory(route("a")))
    server = DestinationServer(hub, "127.0.0.1", 0, heartbeat=5)
    await server.start()
    try:
        stream = await Stream.open(server.bound_port, "10.43.0.10:80")
        first = await stream.next()
        assert first["type"] == "ROUTES"
        assert [r["metadata"]["name"] for r in first["routes"]] == ["a"]
        assert (await stream.next())["type"] == "ADDED"
        hub.publish(directory(route("a"), route("b")))
        again = await stream.next()
        assert [r["metadata"]["name"] for r in again["routes"]] == ["a", "b"]
        hub.publish(directory())
        assert await stream.next() == {"type": "ROUTES", "routes": []}
        await stream.close()
        plain = await Stream.open(server.bound_port, "10.43.0.10:80")
        assert (await plain.next())["type"] == "ADDED"  # no routes: the stream looks as before
        await plain.close()
    finally:
        await server.stop()


async def test_the_client_keeps_the_last_valid_routes() -> None:
    hub = Hub()
    hub.publish(directory(route("a")))
    server = DestinationServer(hub, "127.0.0.1", 0, heartbeat=5)
    await server.start()
    client = DestinationClient("127.0.0.1", server.bound_port, read_timeout=2.0)
    try:
        resolution = client.resolve("10.43.0.10:80")
        assert await resolution.first_answer(2.0)
        assert resolution.routes is not None and len(resolution.routes) == 1
        seen = resolution.route_updates
        # A control plane that sends something broken (here: bypassing its own checks).
        bad = route("broken")
        bad["spec"]["rules"][0]["matches"] = [{"path": {"type": "RegularExpression",
                                                        "value": "(["}}]  # fmt: skip
        text = json.dumps(bad)
        good = directory(route("a"))
        broken = RouteDoc("shop", "broken", (("shop", "web", None),), text)
        hub.publish(Directory(SERVICES, (), (*good.routes, broken)))
        await asyncio.sleep(0.3)
        assert resolution.route_updates == seen  # ignored: the last valid table stays
        found = resolution.routes.find(Request("GET", "/", {}.get))
        assert found is not None and found.route.name == "a"
        hub.publish(directory())
        async with asyncio.timeout(2.0):
            while resolution.routes is not None:
                await asyncio.sleep(0.01)
    finally:
        await client.close()
        await server.stop()
