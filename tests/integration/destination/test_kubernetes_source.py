"""The Kubernetes source on the API test bed: changes reach a streaming client within a second.

A real destination server (loopback) fed by real lightkube watches over HTTPS against the
emulated API server; the test bed's kubelet turns Deployments into Pods and maintains the
EndpointSlices as pods become ready or go away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from tests.support.destination import Stream, addresses
from tests.support.kubeapi import KubeAPI

from lacewing.controller.destination import DestinationServer, Hub, KubernetesSource
from lacewing.k8s.watch import Backoff, KindWatch, connect_async

NS = "default"
WEB_ID = "web.default.serviceaccount.identity.lacewing.cluster.local"


def deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": "web", "lacewing.io/control-plane-ns": "lacewing"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "web",
                    "containers": [
                        {"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}]}
                    ],
                },
            },
        },
    }


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {
        "name": "web",
        "namespace": NS,
        "annotations": {"config.lacewing.io/opaque-ports": "5432"},
    },
    "spec": {
        "selector": {"app": "web"},
        "ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "pg", "port": 5432, "targetPort": 5432},
        ],
    },
}


@dataclass
class Running:
    api: KubeAPI
    server: DestinationServer
    watches: dict[str, KindWatch]

    def scale(self, replicas: int) -> None:
        self.api.patch("apps/v1", "Deployment", "web", {"spec": {"replicas": replicas}}, NS)
        self.api.kubelet.sync()

    def pod_ips(self) -> dict[str, str]:
        pods = self.api.list("v1", "Pod", NS)
        return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}


@pytest.fixture
async def running(kube_api: KubeAPI) -> AsyncIterator[Running]:
    kube_api.create(deployment(2))
    kube_api.create(SERVICE)
    kube_api.kubelet.sync()
    kube_api.kubelet.mark_ready(NS)
    client = connect_async(str(kube_api.kubeconfig))
    watches = {
        kind: KindWatch(client, kind, backoff=Backoff(first=0.05, cap=0.2))
        for kind in KubernetesSource.KINDS
    }
    hub = Hub()
    source = KubernetesSource(dict(watches), hub.publish)
    server = DestinationServer(hub, "127.0.0.1", 0, heartbeat=0.5)
    await server.start()
    task = asyncio.create_task(source.run(), name="test-kubernetes-source")
    try:
        yield Running(kube_api, server, watches)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.stop()
        await client.close()


async def test_initial_state_with_identity_workload_and_opaque_ports(running: Running) -> None:
    stream = await Stream.open(running.server.bound_port, "web.default.svc.cluster.local:80")
    first = await stream.next(timeout=3.0)
    ips = sorted(running.pod_ips().values())
    assert first["type"] == "ADDED" and addresses(first) == [f"{ip}:8080" for ip in ips]
    endpoint = first["endpoints"][0]
    assert endpoint["identity"] == WEB_ID and endpoint["opaque"] is False
    assert endpoint["labels"]["deployment"] == "web"
    assert endpoint["labels"]["service"] == "web"
    assert endpoint["labels"]["pod"].startswith("web-")
    await stream.close()

    service = running.api.get("v1", "Service", "web", NS)
    assert service is not None
    cluster_ip = service["spec"]["clusterIP"]
    opaque = await Stream.open(running.server.bound_port, f"{cluster_ip}:5432")
    event = await opaque.next(timeout=3.0)
    assert {e["opaque"] for e in event["endpoints"]} == {True}
    await opaque.close()


async def test_scale_up_scale_down_and_unready_reach_the_stream_within_a_second(
    running: Running,
) -> None:
    stream = await Stream.open(running.server.bound_port, "web:80", namespace=NS)
    assert len((await stream.next(timeout=3.0))["endpoints"]) == 2
    before = running.pod_ips()

    running.scale(3)  # the new pod is not ready yet: no endpoint for it
    running.api.kubelet.mark_ready(NS)
    new_ip = next(ip for name, ip in running.pod_ips().items() if name not in before)
    everyone = sorted(f"{ip}:8080" for ip in running.pod_ips().values())
    events = await stream.until(everyone, timeout=1.0)
    assert [(e["type"], addresses(e)) for e in events] == [("ADDED", [f"{new_ip}:8080"])]

    victim, victim_ip = sorted(running.pod_ips().items())[0]
    running.api.kubelet.mark_ready(NS, ready=False, name_prefix=victim)
    events = await stream.until([a for a in everyone if a != f"{victim_ip}:8080"], timeout=1.0)
    assert [(e["type"], addresses(e)) for e in events] == [("REMOVED", [f"{victim_ip}:8080"])]

    running.scale(0)
    events = await stream.until([], timeout=1.0)
    # the Service is known, so its labels come along: the proxy answers 503 with them
    assert events[-1] == {
        "type": "NO_ENDPOINTS",
        "exists": True,
        "labels": {"namespace": NS, "service": "web"},
    }
    await stream.close()


async def test_an_expired_watch_relists_and_the_change_still_arrives(running: Running) -> None:
    stream = await Stream.open(running.server.bound_port, "web:80", namespace=NS)
    assert len((await stream.next(timeout=3.0))["endpoints"]) == 2
    relists = running.watches["EndpointSlice"].relists
    store = running.api.cluster.store
    running.api.set_history_window(1)
    for i in range(3):  # unrelated writes push our watches' versions out of the history
        running.api.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"c{i}", "namespace": NS},
            }
        )
    with store._lock:  # the API server drops every open watch, as on a restart
        for watch in list(store._watches):
            watch.push(None)
    running.scale(1)
    survivor = [f"{ip}:8080" for ip in running.pod_ips().values()]
    assert len(survivor) == 1
    events = await stream.until(survivor, timeout=1.0)
    assert {e["type"] for e in events} == {"REMOVED"}
    async with asyncio.timeout(1.0):  # the slice watch came back through 410 and a re-list
        while running.watches["EndpointSlice"].relists == relists:
            await asyncio.sleep(0.01)
    web_slices = [
        obj
        for obj in running.watches["EndpointSlice"].cache.values()
        if obj["metadata"].get("labels", {}).get("kubernetes.io/service-name") == "web"
    ]
    relisted = [f"{a}:8080" for ep in web_slices[0]["endpoints"] for a in ep["addresses"]]
    assert len(web_slices) == 1 and relisted == survivor  # the re-list saw the scale-down
    await stream.close()
