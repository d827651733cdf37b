"""The policy API on loopback: the whole PortPolicy first, again on every change, heartbeats."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.policy import PolicyStream, summary
from tests.unit.proxy.identity.pki import Pki, issue_credentials

from lacewing.controller.destination.tls import serving_context
from lacewing.controller.policy import Hub, PolicyServer, index_from_objects
from lacewing.core.identity import Identity
from lacewing.core.policy import evaluate, policy_from_dict
from lacewing.core.policy_index import PolicyConfig
from lacewing.proxy.identity.credentials import client_context

POD = {
    "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
}
SERVER = {
    "apiVersion": "policy.lacewing.io/v1beta1",
    "kind": "Server",
    "metadata": {"name": "web-http", "namespace": "shop"},
    "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": "http"},
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
BOT = "bot.shop.serviceaccount.identity.lacewing.cluster.local"


def publish(
    hub: Hub, *resources: dict[str, Any], pods: tuple[dict[str, Any], ...] = (POD,)
) -> None:
    index, problems = index_from_objects(resources, pods, [], PolicyConfig())
    assert not problems
    hub.publish(index)


@pytest.fixture
async def served() -> AsyncIterator[tuple[Hub, PolicyServer]]:
    hub = Hub()
    server = PolicyServer(hub, "127.0.0.1", 0, heartbeat=0.2)
    await server.start()
    yield hub, server
    await server.stop()


async def test_stream_sends_the_policy_then_every_change(served: tuple[Hub, PolicyServer]) -> None:
    hub, server = served
    stream = await PolicyStream.open(server.bound_port, "namespace=shop&pod=web-0&port=8080")
    assert stream.status == 200
    with pytest.raises(TimeoutError):  # nothing before the source has published
        await stream.next(timeout=0.5)
    assert stream.heartbeats >= 1
    publish(hub)
    first = await stream.next()
    assert summary(first) == ("default", "all-unauthenticated", ["all-unauthenticated"])
    policy = policy_from_dict(first["policy"])  # what the proxy would parse
    assert evaluate(policy, None, "10.42.0.9").allowed

    publish(hub, SERVER)  # a Server with no authorization: deny
    assert summary(await stream.next()) == ("server", "web-http", [])
    publish(hub, SERVER, AUTHZ)
    event = await stream.next()
    assert summary(event) == ("server", "web-http", ["bot-in"])
    policy = policy_from_dict(event["policy"])
    assert evaluate(policy, BOT, "10.42.0.9").allowed
    assert not evaluate(policy, None, "10.42.0.9").allowed

    publish(hub, SERVER, AUTHZ, pods=(POD, {**POD, "metadata": {**POD["metadata"], "name": "x"}}))
    with pytest.raises(TimeoutError):  # another pod changed: this port's policy did not
        await stream.next(timeout=0.5)
    publish(hub, SERVER, AUTHZ, pods=())
    assert await stream.next() == {"type": "NOT_FOUND", "error": "pod shop/web-0 is not known"}
    await stream.close()


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("namespace=shop&port=80", "namespace and pod are required"),
        ("namespace=shop&pod=a&port=70000", "port '70000' is not a port number from 1 to 65535"),
        ("namespace=shop&pod=a", "port '' is not a port number from 1 to 65535"),
    ],
)
async def test_bad_questions_get_400_with_a_hint(
    served: tuple[Hub, PolicyServer], query: str, error: str
) -> None:
    _, server = served
    stream = await PolicyStream.open(server.bound_port, query)
    assert stream.status == 400
    body = await stream.body()
    assert body["error"] == error and "/v1/inbound?namespace=NS&pod=POD&port=PORT" in body["hint"]
    await stream.close()


async def test_ready_once_published(served: tuple[Hub, PolicyServer]) -> None:
    hub, server = served

    async def ready() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
        writer.write(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
        status = int((await reader.readline()).split()[1])
        writer.close()
        return status

    assert await ready() == 503
    publish(hub)
    assert await ready() == 200


async def test_mutual_tls_stream(tmp_path: Path) -> None:
    pki = Pki.make()
    anchors = tmp_path / "ca.crt"
    anchors.write_text(pki.anchors_pem)
    server_id = Identity("lacewing", "policy")
    context = serving_context(pki.write_issuer_dir(tmp_path / "issuer"), anchors, server_id)
    hub = Hub()
    publish(hub, SERVER, AUTHZ)
    server = PolicyServer(hub, "127.0.0.1", 0, ssl_context=context)
    await server.start()
    try:
        proxy = issue_credentials(pki, pki.identity("shop", "web"))
        stream = await PolicyStream.open(
            server.bound_port,
            "namespace=shop&pod=web-0&port=8080",
            ssl_context=client_context(proxy, pki.anchors_pem),
            server_hostname=server_id.name,
        )
        assert summary(await stream.next(timeout=3.0)) == ("server", "web-http", ["bot-in"])
        await stream.close()

        anonymous = ssl.create_default_context(cadata=pki.anchors_pem)
        anonymous.check_hostname = False
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, EOFError)):
            stream = await PolicyStream.open(
                server.bound_port, "namespace=shop&pod=web-0&port=8080", ssl_context=anonymous
            )
            await stream.next(timeout=3.0)
    finally:
        await server.stop()
