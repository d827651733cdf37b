"""The proxy's policy client against a real policy server on loopback.

Default policy before any answer (fail closed with deny), the controller's policy once it
streams, every change pushed, the last policy kept while the controller is down, and a
restarted controller picked up without restarting the client.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lacewing.controller.policy import Hub, PolicyServer, index_from_objects
from lacewing.core.policy import default_port_policy, evaluate, parse_networks
from lacewing.core.policy_index import PolicyConfig
from lacewing.proxy.policy import InboundGate, PolicyClient

NETS = parse_networks("10.0.0.0/8")
BOT = "bot.shop.serviceaccount.identity.lacewing.cluster.local"
POD = {
    "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
}
SERVER = {
    "apiVersion": "policy.lacewing.io/v1beta1",
    "kind": "Server",
    "metadata": {"name": "web-http", "namespace": "shop"},
    "spec": {"podSelector": {}, "port": 8080},
}
AUTHZ = {
    "apiVersion": "policy.lacewing.io/v1beta1",
    "kind": "AuthorizationPolicy",
    "metadata": {"name": "bot-in", "namespace": "shop"},
    "spec": {
        "targetRef": {"group": "policy.lacewing.io", "kind": "Server", "name": "web-http"},
        "requiredAuthenticationRefs": [{"kind": "ServiceAccount", "name": "bot"}],
    },
}


def publish(hub: Hub, *resources: dict[str, Any]) -> None:
    hub.publish(index_from_objects(resources, [POD], [], PolicyConfig())[0])


async def until(predicate: Any, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_default_then_streamed_then_kept_while_down_then_reconnected() -> None:
    hub = Hub()
    server = PolicyServer(hub, "127.0.0.1", 0, heartbeat=0.2)
    await server.start()
    port = server.bound_port
    await server.stop()  # the controller is down before the proxy ever heard from it

    client = PolicyClient(
        "127.0.0.1",
        port,
        namespace="shop",
        pod="web-0",
        default=lambda p: default_port_policy(p, "deny", NETS),
        backoff_first=0.02,
        backoff_cap=0.05,
        read_timeout=1.0,
    )
    gate = InboundGate(client.policy)
    try:
        assert client.policy(8080).server_name == "deny"
        assert not gate.connection(8080, BOT, "10.1.2.3").accept  # fail closed
        await asyncio.sleep(0.2)  # several failed attempts
        assert client.connects == 0 and client.policy(8080).server_name == "deny"

        publish(hub, SERVER, AUTHZ)
        server = PolicyServer(hub, "127.0.0.1", port, heartbeat=0.2)
        await server.start()
        await until(lambda: client.watch(8080).policy is not None)
        assert client.policy(8080).server_name == "web-http"
        assert gate.connection(8080, BOT, "10.1.2.3").accept

        watch = client.watch(8080)
        updates = watch.updates
        publish(hub, SERVER)  # the authorization goes away
        await until(lambda: watch.updates > updates)
        assert client.policy(8080).authorizations == ()
        assert not gate.connection(8080, BOT, "10.1.2.3").accept

        await server.stop()  # the controller goes down: the last policy stays
        await until(lambda: not watch.connected)
        assert client.policy(8080).server_name == "web-http"

        publish(hub, SERVER, AUTHZ)
        server = PolicyServer(hub, "127.0.0.1", port, heartbeat=0.2)
        await server.start()
        await until(lambda: evaluate(client.policy(8080), BOT, "10.1.2.3").allowed)
        assert client.connects == 2
    finally:
        await client.close()
        await server.stop()


async def test_a_refused_question_is_final_and_keeps_the_default() -> None:
    hub = Hub()
    publish(hub)
    server = PolicyServer(hub, "127.0.0.1", 0)
    await server.start()
    client = PolicyClient(
        "127.0.0.1",
        server.bound_port,
        namespace="",
        pod="web-0",
        default=lambda p: default_port_policy(p, "all-unauthenticated", NETS),
        backoff_first=0.02,
    )
    try:
        watch = client.watch(8080)
        await asyncio.sleep(0.3)
        assert watch.policy is None and client.connects == 0
        assert client.policy(8080).server_name == "all-unauthenticated"
    finally:
        await client.close()
        await server.stop()


async def test_a_first_connection_waits_for_the_answer_not_for_a_dead_controller() -> None:
    hub = Hub()
    publish(hub, SERVER)
    server = PolicyServer(hub, "127.0.0.1", 0)
    await server.start()
    client = PolicyClient(
        "127.0.0.1",
        server.bound_port,
        namespace="shop",
        pod="web-0",
        default=lambda p: default_port_policy(p, "all-unauthenticated", NETS),
    )
    try:
        client.prefetch([8080])
        policy = await client.settled(8080, timeout=3.0)  # the controller's, not the default
        assert policy.server_name == "web-http"
        assert client.watch(8080).is_settled
    finally:
        await client.close()
        await server.stop()

    down = PolicyClient(
        "127.0.0.1",
        server.bound_port,  # nobody listens there any more
        namespace="shop",
        pod="web-0",
        default=lambda p: default_port_policy(p, "deny", NETS),
        backoff_first=5.0,
    )
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        policy = await down.settled(8080, timeout=3.0)
        assert policy.server_name == "deny" and loop.time() - started < 1.0
    finally:
        await down.close()
