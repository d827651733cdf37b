"""HTTPRoutes and GRPCRoutes on the API test bed: status written back, and routes reaching a
proxy's table.

The destination controller's Kubernetes source (real lightkube watches over HTTPS against the
emulated API server, both HTTPRoute groups) with its status writer, a real destination server
on loopback, and the proxy's own `DestinationClient` resolving the Service's cluster IP as an
application's connection would, or a whole proxy (in-process, loopback apps behind
EndpointSlices written by the test) answering real requests. No kubelet: routes, Services and
hand-written EndpointSlices need none.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from tests.support.kubeapi import KubeAPI
from tests.unit.proxy.sockets.harness import Client, proxy

from lacewing.controller.destination import DestinationServer, Hub, KubernetesSource
from lacewing.controller.destination.route_status import CONTROLLER_NAME, RouteStatusReporter
from lacewing.core.route_table import Request
from lacewing.install.crds import custom_resource_definitions
from lacewing.k8s.status import StatusWriter
from lacewing.k8s.watch import Backoff, KindWatch, connect_async
from lacewing.proxy import accept as proxy_accept
from lacewing.proxy.config import Addr
from lacewing.proxy.discovery import DestinationClient

NS = "shop"
GATEWAY = "gateway.networking.k8s.io/v1"
OURS = "policy.lacewing.io/v1beta1"

# The upstream CRD's shape, reduced to what the test bed needs: served v1 with status.
GATEWAY_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "httproutes.gateway.networking.k8s.io"},
    "spec": {
        "group": "gateway.networking.k8s.io",
        "scope": "Namespaced",
        "names": {"kind": "HTTPRoute", "listKind": "HTTPRouteList", "plural": "httproutes",
                  "singular": "httproute"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "subresources": {"status": {}},
                      "schema": {"openAPIV3Schema": {
                          "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}  # fmt: skip


GRPC_GATEWAY_CRD = copy.deepcopy(GATEWAY_CRD)
GRPC_GATEWAY_CRD["metadata"]["name"] = "grpcroutes.gateway.networking.k8s.io"
GRPC_GATEWAY_CRD["spec"]["names"] = {"kind": "GRPCRoute", "listKind": "GRPCRouteList",
                                     "plural": "grpcroutes", "singular": "grpcroute"}  # fmt: skip


def service(name: str, ip: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80,
                                                  "targetPort": 8080}]}}  # fmt: skip


def route(api: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": api, "kind": "HTTPRoute", "metadata": {"name": name, "namespace": NS},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "web",
                                     "port": 80}], "rules": rules}}  # fmt: skip


def split(web: int, canary: int) -> list[dict[str, Any]]:
    return [{"backendRefs": [{"name": "web", "port": 80, "weight": web},
                             {"name": "web-canary", "port": 80, "weight": canary}]}]  # fmt: skip


@dataclass
class Running:
    api: KubeAPI
    server: DestinationServer
    writer: StatusWriter

    def conditions(
        self, api: str, name: str, kind: str = "HTTPRoute"
    ) -> dict[str, tuple[str, str]] | None:
        obj = self.api.get(api, kind, name, NS)
        parents = ((obj or {}).get("status") or {}).get("parents") or []
        ours = [p for p in parents if p.get("controllerName") == CONTROLLER_NAME]
        if not ours:
            return None
        assert len(ours) == 1 and ours[0]["parentRef"]["name"] == "web"
        return {c["type"]: (c["status"], c["reason"]) for c in ours[0]["conditions"]}

    async def wait_conditions(
        self, api: str, name: str, timeout: float = 3.0, kind: str = "HTTPRoute"
    ) -> dict[str, tuple[str, str]]:
        async with asyncio.timeout(timeout):
            while (found := self.conditions(api, name, kind)) is None:
                await asyncio.sleep(0.02)
        return found


@pytest.fixture
async def running(kube_api: KubeAPI) -> AsyncIterator[Running]:
    for crd in custom_resource_definitions():
        kube_api.create(crd)
    kube_api.create(GATEWAY_CRD)
    kube_api.create(GRPC_GATEWAY_CRD)
    kube_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube_api.create(service("web", "127.43.0.10"))
    client = connect_async(str(kube_api.kubeconfig))
    kinds = (*KubernetesSource.KINDS, *KubernetesSource.ROUTE_KINDS)
    watches = {k: KindWatch(client, k, backoff=Backoff(first=0.05, cap=0.2)) for k in kinds}
    writer = StatusWriter(client, backoff=Backoff(first=0.05, cap=0.2))
    hub = Hub()
    source = KubernetesSource(dict(watches), hub.publish,
                              route_status=RouteStatusReporter(writer.submit))  # fmt: skip
    server = DestinationServer(hub, "127.0.0.1", 0, heartbeat=0.5)
    await server.start()
    tasks = [asyncio.create_task(source.run(), name="test-destination-source"),
             asyncio.create_task(writer.run(), name="test-route-status")]  # fmt: skip
    try:
        yield Running(kube_api, server, writer)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.stop()
        await client.close()


async def test_invalid_routes_get_accepted_false_with_the_reason_and_valid_ones_true(
    running: Running,
) -> None:
    api = running.api
    bad_regex = [{"matches": [{"path": {"type": "RegularExpression", "value": "/v1/(["}}]}]
    api.create(route(GATEWAY, "good", [{"backendRefs": [{"name": "web", "port": 80}]}]))
    api.create(route(OURS, "good-ours", []))
    api.create(route(GATEWAY, "bad-regex", bad_regex))
    api.create(route(OURS, "missing-backend", split(90, 10)))  # no web-canary Service yet

    assert await running.wait_conditions(GATEWAY, "good") == {
        "Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}  # fmt: skip
    assert await running.wait_conditions(OURS, "good-ours") == {
        "Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}  # fmt: skip
    regex = await running.wait_conditions(GATEWAY, "bad-regex")
    assert regex["Accepted"] == ("False", "UnsupportedValue")
    missing = await running.wait_conditions(OURS, "missing-backend")
    assert missing == {"Accepted": ("False", "BackendNotFound"),
                       "ResolvedRefs": ("False", "BackendNotFound")}  # fmt: skip
    obj = api.get(OURS, "HTTPRoute", "missing-backend", NS)
    assert obj is not None
    message = obj["status"]["parents"][0]["conditions"][0]["message"]
    assert "Service shop/web-canary port 80 does not exist" in message

    # The backend appears: the same route turns Accepted, with a new transition time.
    api.create(service("web-canary", "127.43.0.11"))
    accepted = {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    async with asyncio.timeout(2.0):
        while running.conditions(OURS, "missing-backend") != accepted:
            await asyncio.sleep(0.02)

    # Another controller's entry survives ours, and nothing is written while nothing changes.
    obj = api.get(GATEWAY, "HTTPRoute", "good", NS)
    assert obj is not None
    theirs = {"parentRef": {"name": "gw", "kind": "Gateway"}, "controllerName": "example.com/gw",
              "conditions": []}  # fmt: skip
    changed = copy.deepcopy(obj)
    changed["status"]["parents"].insert(0, theirs)
    api.replace_status(changed)
    await asyncio.sleep(0.5)
    writes = running.writer.writes
    await asyncio.sleep(0.5)
    assert running.writer.writes == writes
    after = api.get(GATEWAY, "HTTPRoute", "good", NS)
    assert after is not None and after["status"]["parents"][0] == theirs
    assert [p["controllerName"] for p in after["status"]["parents"]] == [
        "example.com/gw", CONTROLLER_NAME]  # fmt: skip


def grpc_route(api: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    obj = route(api, name, rules)
    obj["kind"] = "GRPCRoute"
    return obj


async def test_grpc_routes_get_the_same_status_as_http_routes_in_both_groups(
    running: Running,
) -> None:
    api = running.api
    to_canary = [{"matches": [{"method": {"service": "hello.Greeter", "method": "SayHello"}}],
                  "backendRefs": [{"name": "web-canary", "port": 80}]}]  # fmt: skip
    bad_method = [{"matches": [{"method": {"service": "hello.Greeter", "method": "Say/Hello"}}],
                   "backendRefs": [{"name": "web", "port": 80}]}]  # fmt: skip
    accepted = {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    missing = {"Accepted": ("False", "BackendNotFound"),
               "ResolvedRefs": ("False", "BackendNotFound")}  # fmt: skip
    for api_version in (GATEWAY, OURS):
        api.create(grpc_route(api_version, "to-canary", to_canary))  # no web-canary yet
        api.create(grpc_route(api_version, "bad-method", bad_method))
        api.create(grpc_route(api_version, "plain", []))
    for api_version in (GATEWAY, OURS):
        assert await running.wait_conditions(api_version, "plain", kind="GRPCRoute") == accepted
        found = await running.wait_conditions(api_version, "to-canary", kind="GRPCRoute")
        assert found == missing, (api_version, found)
        obj = api.get(api_version, "GRPCRoute", "to-canary", NS)
        assert obj is not None
        message = obj["status"]["parents"][0]["conditions"][0]["message"]
        assert "Service shop/web-canary port 80 does not exist" in message
        bad = await running.wait_conditions(api_version, "bad-method", kind="GRPCRoute")
        assert bad["Accepted"] == ("False", "UnsupportedValue"), (api_version, bad)
        obj = api.get(api_version, "GRPCRoute", "bad-method", NS)
        assert obj is not None
        assert "is not a gRPC method name" in obj["status"]["parents"][0]["conditions"][0][
            "message"]  # fmt: skip
        # an HTTPRoute of the same name is not touched (the kinds stay apart)
        assert api.get(api_version, "HTTPRoute", "to-canary", NS) is None

    # The backend appears: both groups' routes heal.
    api.create(service("web-canary", "127.43.0.11"))
    async with asyncio.timeout(2.0):
        while any(running.conditions(v, "to-canary", "GRPCRoute") != accepted
                  for v in (GATEWAY, OURS)):  # fmt: skip
            await asyncio.sleep(0.02)
    # The route now reaches a proxy's table, as a gRPC method match.
    client = DestinationClient("127.0.0.1", running.server.bound_port, read_timeout=5.0)
    try:
        resolution = client.resolve("127.43.0.10:80")
        assert await resolution.first_answer(3.0)  # (both groups' copies share a name)
        async with asyncio.timeout(1.0):
            while resolution.routes is None:
                await asyncio.sleep(0.005)
        found = resolution.routes.find(Request("POST", "/hello.Greeter/SayHello", {}.get))
        assert found is not None and [b.name for b in found.rule.backends] == ["web-canary"]
    finally:
        await client.close()


async def test_a_route_applied_reaches_the_proxy_route_table_and_changes_within_a_second(
    running: Running,
) -> None:
    api = running.api
    api.create(service("web-canary", "127.43.0.11"))
    client = DestinationClient("127.0.0.1", running.server.bound_port, read_timeout=5.0)
    try:
        resolution = client.resolve("127.43.0.10:80")  # what an app's connection asks
        assert await resolution.first_answer(3.0)
        assert resolution.routes is None

        def weights() -> dict[str, int] | None:
            if resolution.routes is None:
                return None
            found = resolution.routes.find(Request("GET", "/", {}.get))
            assert found is not None
            return {b.name: b.weight for b in found.rule.backends}

        started = time.monotonic()
        api.create(route(GATEWAY, "canary", split(90, 10)))
        async with asyncio.timeout(1.0):
            while weights() != {"web": 90, "web-canary": 10}:
                await asyncio.sleep(0.005)
        applied = time.monotonic() - started

        started = time.monotonic()
        api.patch(GATEWAY, "HTTPRoute", "canary", {"spec": {"rules": split(50, 50)}}, NS)
        async with asyncio.timeout(1.0):
            while weights() != {"web": 50, "web-canary": 50}:
                await asyncio.sleep(0.005)
        changed = time.monotonic() - started
        print(f"route applied in {applied * 1000:.0f} ms, changed in {changed * 1000:.0f} ms")

        # An edit that breaks the route: its status says why, and it is left out of the stream.
        broken = [{"matches": [{"path": {"type": "RegularExpression", "value": "(["}}]}]
        api.patch(GATEWAY, "HTTPRoute", "canary", {"spec": {"rules": broken}}, NS)
        async with asyncio.timeout(2.0):
            while (running.conditions(GATEWAY, "canary") or {}).get("Accepted") != (
                "False", "UnsupportedValue"):  # fmt: skip
                await asyncio.sleep(0.02)
        async with asyncio.timeout(1.0):
            while resolution.routes is not None:
                await asyncio.sleep(0.005)
    finally:
        await client.close()


async def test_service_annotations_are_its_default_route_and_what_its_routes_inherit(
    running: Running,
) -> None:
    api = running.api
    client = DestinationClient("127.0.0.1", running.server.bound_port, read_timeout=5.0)
    try:
        resolution = client.resolve("127.43.0.10:80")
        assert await resolution.first_answer(3.0)
        assert resolution.routes is None
        notes = {"timeout.lacewing.io/request": "300ms", "retry.lacewing.io/http": "gateway-error",
                 "retry.lacewing.io/limit": "3", "unrelated.example.com/x": "y"}  # fmt: skip
        api.patch("v1", "Service", "web", {"metadata": {"annotations": notes}}, NS)

        def rule() -> Any:
            if resolution.routes is None:
                return None
            found = resolution.routes.find(Request("POST", "/any/path", {}.get))
            return None if found is None else (found.route.name, found.rule)

        async with asyncio.timeout(1.0):
            while rule() is None:
                await asyncio.sleep(0.005)
        name, default = rule()
        assert name == "service-default" and default.timeout == 0.3
        assert default.retry.statuses == {502, 503, 504} and default.retry.limit == 3
        assert default.backends == ()  # to the Service itself

        # A route attached to the Service replaces the default and inherits its annotations
        # under its own: here its own retry limit wins, the timeout and statuses carry over.
        own = route(GATEWAY, "own", [{"backendRefs": [{"name": "web", "port": 80}]}])
        own["metadata"]["annotations"] = {"retry.lacewing.io/limit": "1"}
        api.create(own)
        async with asyncio.timeout(1.0):
            while (found := rule()) is None or found[0] != "own":
                await asyncio.sleep(0.005)
        assert found[1].timeout == 0.3 and found[1].retry.limit == 1
        assert found[1].retry.statuses == {502, 503, 504}
        # Once the Service drops its annotations, the route has only its own.
        api.patch("v1", "Service", "web", {"metadata": {"annotations": {
            "timeout.lacewing.io/request": None, "retry.lacewing.io/http": None,
            "retry.lacewing.io/limit": None}}}, NS)  # fmt: skip
        async with asyncio.timeout(1.0):
            while (found := rule()) is None or found[1].timeout is not None:
                await asyncio.sleep(0.005)
        assert found[0] == "own" and found[1].retry is None  # a limit alone retries nothing
    finally:
        await client.close()


async def name_app(name: str, host: str) -> asyncio.Server:
    """A keep-alive HTTP/1.1 app that answers its name to every request."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                body = name.encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(serve, host, 0)


def endpoint_slice(service: str, ip: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-1", "namespace": NS,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}]}  # fmt: skip


async def test_a_split_applied_on_the_api_moves_a_real_proxys_requests_within_a_second(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = running.api
    apps = {"web": await name_app("web", "127.0.0.1"),
            "web-canary": await name_app("web-canary", "127.0.0.2")}  # fmt: skip
    api.create(service("web-canary", "127.43.0.11"))
    for (name, app), ip in zip(apps.items(), ("127.0.0.1", "127.0.0.2"), strict=True):
        api.create(endpoint_slice(name, ip, app.sockets[0].getsockname()[1]))
    # Every connection the app makes goes to web's cluster IP (what iptables would tell).
    monkeypatch.setattr(proxy_accept, "original_dst", lambda sock: Addr("127.43.0.10", 80))
    env = {"LACEWING_PROXY_DESTINATION_ADDR": f"127.0.0.1:{running.server.bound_port}"}

    async def answers(client: Client, n: int) -> dict[str, int]:
        seen: dict[str, int] = {}
        for _ in range(n):
            await client.send(b"GET / HTTP/1.1\r\nHost: web.shop\r\n\r\n")
            status, _, body = await client.response()
            key = body.decode() if status == 200 else str(status)
            seen[key] = seen.get(key, 0) + 1
        return seen

    try:
        async with proxy(env) as server:
            client = await Client.open(server.bound["outbound"].port)
            try:
                assert await answers(client, 20) == {"web": 20}  # no route: web's endpoint
                api.create(route(GATEWAY, "canary", split(0, 1)))
                started = time.monotonic()
                async with asyncio.timeout(1.0):
                    while "web-canary" not in await answers(client, 1):
                        pass
                applied = time.monotonic() - started
                assert await answers(client, 50) == {"web-canary": 50}
                api.patch(GATEWAY, "HTTPRoute", "canary", {"spec": {"rules": split(1, 0)}}, NS)
                started, during = time.monotonic(), {}
                async with asyncio.timeout(1.0):
                    while True:  # requests keep flowing while the change lands
                        step = await answers(client, 1)
                        for key, count in step.items():
                            during[key] = during.get(key, 0) + count
                        if "web" in step:
                            break
                changed = time.monotonic() - started
                assert set(during) <= {"web", "web-canary"}, during  # no failed request
                assert await answers(client, 50) == {"web": 50}
            finally:
                await client.close()
    finally:
        for app in apps.values():
            app.close()
            await app.wait_closed()
    print(
        f"real proxy: route applied in {applied * 1000:.0f} ms, changed in {changed * 1000:.0f} ms"
    )
