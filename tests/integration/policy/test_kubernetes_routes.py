"""Route-scoped policy on the API test bed: an HTTPRoute on a Server reaches the stream.

As `test_kubernetes_source`, with the HTTPRoute watches of both groups (the Gateway API's
CRD created as the upstream one would be): creating an HTTPRoute whose parent is a Server,
authorizing it, changing its match and deleting it each reach a proxy's stream within a
second, and a route attached only to a Service (the destination controller's) changes
nothing. A cluster without the Gateway API CRDs still gets its policy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from tests.integration.destination.test_kubernetes_routes import GATEWAY_CRD
from tests.integration.policy.test_kubernetes_source import MESH, NS, POD, QUERY, SERVER, Running
from tests.support.kubeapi import KubeAPI
from tests.support.policy import PolicyStream

from lacewing.controller.policy import Hub, KubernetesSource, PolicyServer
from lacewing.core.policy import evaluate, policy_from_dict
from lacewing.core.policy_index import PolicyConfig
from lacewing.install.crds import custom_resource_definitions
from lacewing.k8s.watch import Backoff, KindWatch, connect_async

GATEWAY = "gateway.networking.k8s.io/v1"
P = "policy.lacewing.io/v1beta1"
BOT = "bot.shop.serviceaccount.identity.lacewing.cluster.local"
EVIL = "evil.shop.serviceaccount.identity.lacewing.cluster.local"


def _route(path: str, parent: dict[str, Any] | None = None, api: str = GATEWAY,
           name: str = "web-api") -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": api,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "parentRefs": [parent or {"group": "policy.lacewing.io", "kind": "Server",
                                      "name": "web-http"}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}]}],
        },
    }  # fmt: skip


ROUTE_AUTHZ = {
    "apiVersion": P,
    "kind": "AuthorizationPolicy",
    "metadata": {"name": "bot-api", "namespace": NS},
    "spec": {
        "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "web-api"},
        "requiredAuthenticationRefs": [
            {"group": "policy.lacewing.io", "kind": "MeshTLSAuthentication", "name": "bot"}
        ],
    },
}


async def _running(kube_api: KubeAPI, crds: Iterable[dict[str, Any]]) -> AsyncIterator[Running]:
    for crd in crds:
        kube_api.create(crd)
    kube_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube_api.create(POD)
    client = connect_async(str(kube_api.kubeconfig))
    watches = {
        kind: KindWatch(client, kind, backoff=Backoff(first=0.05, cap=0.2))
        for kind in (*KubernetesSource.KINDS, *KubernetesSource.ROUTE_KINDS)
    }
    hub = Hub()
    source = KubernetesSource(watches, hub.publish, PolicyConfig())
    server = PolicyServer(hub, "127.0.0.1", 0, heartbeat=0.5)
    await server.start()
    task = asyncio.create_task(source.run(), name="test-policy-source")
    try:
        yield Running(kube_api, server, [])
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.stop()
        await client.close()


@pytest.fixture
async def running(kube_api: KubeAPI) -> AsyncIterator[Running]:
    async for r in _running(kube_api, [*custom_resource_definitions(), GATEWAY_CRD]):
        yield r


@pytest.fixture
async def without_gateway_api(kube_api: KubeAPI) -> AsyncIterator[Running]:
    async for r in _running(kube_api, custom_resource_definitions()):
        yield r


def _decide(event: dict[str, Any], who: str | None, path: str) -> tuple[bool, bool]:
    decision = evaluate(policy_from_dict(event["policy"]), who, "10.42.0.7", method="GET",
                        path=path)  # fmt: skip
    return decision.allowed, decision.not_found


async def test_a_servers_route_appears_changes_and_disappears_within_a_second(
    running: Running,
) -> None:
    api = running.api
    api.create(SERVER)
    stream = await PolicyStream.open(running.server.bound_port, QUERY)
    first = await stream.next(timeout=5.0)
    assert first["policy"]["server"]["name"] == "web-http"
    assert "routes" not in first["policy"] and first["policy"]["probePaths"] == ["/ready"]

    event, took = await running.change(stream, lambda: api.create(_route("/api")))
    assert took < 1.0
    assert [r["name"] for r in event["policy"]["routes"]] == ["web-api"]
    assert event["policy"]["probePaths"] == []  # routes switch the probe authorization off
    assert _decide(event, BOT, "/api/x") == (False, False)  # a route nobody may use yet
    assert _decide(event, BOT, "/other") == (False, True)  # no route: 404

    api.create(MESH)
    event, took = await running.change(stream, lambda: api.create(ROUTE_AUTHZ))
    assert took < 1.0
    assert _decide(event, BOT, "/api/x") == (True, False)
    assert _decide(event, EVIL, "/api/x") == (False, False)
    assert _decide(event, BOT, "/other") == (False, True)

    event, took = await running.change(
        stream,
        lambda: api.patch(GATEWAY, "HTTPRoute", "web-api", {"spec": {"rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}]}]}}, NS),
    )  # fmt: skip
    assert took < 1.0
    assert _decide(event, BOT, "/v2/x") == (True, False)
    assert _decide(event, BOT, "/api/x") == (False, True)

    service_parent = {"group": "", "kind": "Service", "name": "web", "port": 80}
    api.create(_route("/", service_parent, api=P, name="web-outbound"))  # destination's
    with pytest.raises(TimeoutError):  # nothing this port cares about changed
        await stream.next(timeout=0.5)

    event, took = await running.change(
        stream, lambda: api.delete(GATEWAY, "HTTPRoute", "web-api", NS)
    )
    assert took < 1.0
    assert "routes" not in event["policy"] and event["policy"]["probePaths"] == ["/ready"]
    assert _decide(event, BOT, "/other") == (False, False)  # back to the default route: 403
    print("change -> stream latencies (s):", " ".join(f"{t:.3f}" for t in running.latencies))
    await stream.close()


async def test_without_the_gateway_api_crds_policy_still_flows_and_our_routes_count(
    without_gateway_api: Running,
) -> None:
    running = without_gateway_api
    running.api.create(SERVER)
    stream = await PolicyStream.open(running.server.bound_port, QUERY)
    first = await stream.next(timeout=5.0)
    assert first["policy"]["server"]["name"] == "web-http"
    event, took = await running.change(stream, lambda: running.api.create(_route("/api", api=P)))
    assert took < 1.0
    assert [(r["name"], r["group"]) for r in event["policy"]["routes"]] == [
        ("web-api", "policy.lacewing.io")
    ]
    await stream.close()
