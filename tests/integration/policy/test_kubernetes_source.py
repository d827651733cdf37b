"""The policy controller on the API test bed: resource changes reach a stream within a second.

A real policy server (loopback) fed by real lightkube watches over HTTPS against the emulated
API server, with the CRDs `lacewing install --crds` renders. Each step changes the cluster the
way kubectl would (create, patch, delete) and times how long until the stream's next line
shows the change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from tests.support.kubeapi import KubeAPI
from tests.support.policy import PolicyStream, summary

from lacewing.controller.policy import Hub, KubernetesSource, PolicyServer
from lacewing.core.policy import evaluate, policy_from_dict
from lacewing.core.policy_index import PolicyConfig
from lacewing.install.crds import custom_resource_definitions
from lacewing.k8s.watch import Backoff, KindWatch, connect_async

NS = "shop"
P = "policy.lacewing.io/v1beta1"
BOT = "bot.shop.serviceaccount.identity.lacewing.cluster.local"
EVIL = "evil.shop.serviceaccount.identity.lacewing.cluster.local"
QUERY = f"namespace={NS}&pod=web-0&port=8080"

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-0", "namespace": NS, "labels": {"app": "web"}},
    "spec": {
        "serviceAccountName": "web",
        "containers": [
            {
                "name": "web",
                "image": "web:1",
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"port": "http", "path": "/ready"}},
            }
        ],
    },
}
SERVER = {
    "apiVersion": P,
    "kind": "Server",
    "metadata": {"name": "web-http", "namespace": NS},
    "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": "http"},
}
MESH = {
    "apiVersion": P,
    "kind": "MeshTLSAuthentication",
    "metadata": {"name": "bot", "namespace": NS},
    "spec": {"identities": [BOT]},
}
AUTHZ = {
    "apiVersion": P,
    "kind": "AuthorizationPolicy",
    "metadata": {"name": "bot-in", "namespace": NS},
    "spec": {
        "targetRef": {"group": "policy.lacewing.io", "kind": "Server", "name": "web-http"},
        "requiredAuthenticationRefs": [
            {"group": "policy.lacewing.io", "kind": "MeshTLSAuthentication", "name": "bot"}
        ],
    },
}


@dataclass
class Running:
    api: KubeAPI
    server: PolicyServer
    latencies: list[float]

    async def change(self, stream: PolicyStream, act: Any) -> tuple[dict[str, Any], float]:
        """Do `act()`, then the next line of `stream` and how long it took to come."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        act()
        event = await stream.next(timeout=3.0)
        self.latencies.append(loop.time() - started)
        return event, self.latencies[-1]


@pytest.fixture
async def running(kube_api: KubeAPI) -> AsyncIterator[Running]:
    for crd in custom_resource_definitions():
        kube_api.create(crd)
    kube_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube_api.create(POD)
    client = connect_async(str(kube_api.kubeconfig))
    watches = {
        kind: KindWatch(client, kind, backoff=Backoff(first=0.05, cap=0.2))
        for kind in KubernetesSource.KINDS
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


async def test_created_changed_and_deleted_resources_reach_the_stream_within_a_second(
    running: Running,
) -> None:
    api = running.api
    stream = await PolicyStream.open(running.server.bound_port, QUERY)
    first = await stream.next(timeout=5.0)
    assert summary(first) == ("default", "all-unauthenticated", ["all-unauthenticated"])
    assert first["policy"]["probePaths"] == ["/ready"]

    event, took = await running.change(stream, lambda: api.create(SERVER))
    assert summary(event) == ("server", "web-http", []) and took < 1.0
    policy = policy_from_dict(event["policy"])
    assert not evaluate(policy, BOT, "10.42.0.7").allowed  # a Server without authorization
    assert evaluate(policy, None, "10.42.0.1", method="GET", path="/ready").allowed  # kubelet

    api.create(MESH)
    event, took = await running.change(stream, lambda: api.create(AUTHZ))
    assert summary(event) == ("server", "web-http", ["bot-in"]) and took < 1.0
    policy = policy_from_dict(event["policy"])
    assert evaluate(policy, BOT, "10.42.0.7").allowed
    assert not evaluate(policy, EVIL, "10.42.0.7").allowed

    # Changed: the MeshTLSAuthentication now names the other service account.
    event, took = await running.change(
        stream,
        lambda: api.patch(P, "MeshTLSAuthentication", "bot", {"spec": {"identities": [EVIL]}}, NS),
    )
    assert took < 1.0
    policy = policy_from_dict(event["policy"])
    assert evaluate(policy, EVIL, "10.42.0.7").allowed
    assert not evaluate(policy, BOT, "10.42.0.7").allowed

    # (The CRD's accessPolicy enum lacks `audit` so far; audit is covered by the unit matrix.)
    event, took = await running.change(
        stream,
        lambda: api.patch(
            P, "Server", "web-http", {"spec": {"accessPolicy": "all-unauthenticated"}}, NS
        ),
    )
    assert summary(event) == ("server", "web-http", ["bot-in", "all-unauthenticated"])
    assert took < 1.0
    assert evaluate(policy_from_dict(event["policy"]), None, "203.0.113.9").allowed

    # Deleted: the port falls back to the default policy, now the namespace's annotation.
    api.patch(
        "v1",
        "Namespace",
        NS,
        {"metadata": {"annotations": {"config.lacewing.io/default-inbound-policy": "deny"}}},
    )
    with pytest.raises(TimeoutError):  # the Server still governs the port: nothing to send
        await stream.next(timeout=0.5)
    event, took = await running.change(stream, lambda: api.delete(P, "Server", "web-http", NS))
    assert summary(event) == ("default", "deny", []) and took < 1.0

    event, took = await running.change(stream, lambda: api.delete("v1", "Pod", "web-0", NS))
    assert event == {"type": "NOT_FOUND", "error": "pod shop/web-0 is not known"}
    assert took < 1.0
    print("change -> stream latencies (s):", " ".join(f"{t:.3f}" for t in running.latencies))
    await stream.close()


async def test_an_invalid_resource_that_bypassed_the_webhook_is_ignored(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    stream = await PolicyStream.open(running.server.bound_port, QUERY)
    assert summary(await stream.next(timeout=5.0))[0] == "default"
    bad = {**SERVER, "spec": {**SERVER["spec"], "port": 70000}}  # the CRD schema lets it in
    running.api.create(bad)
    running.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    running.api.create({**SERVER, "metadata": {"name": "other", "namespace": "other"}})
    with pytest.raises(TimeoutError):  # nothing this port cares about changed
        await stream.next(timeout=1.0)
    assert any("spec.port: 70000 is not a port number" in r.getMessage() for r in caplog.records)
    await stream.close()
