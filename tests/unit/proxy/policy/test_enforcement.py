"""Inbound policy enforced by the real proxy on loopback, fed by a real policy server.

The proxy's inbound listener forwards to a loopback app (fixed destination, so the policy's
port is the app's); the policy server is the controller's own stream server with resources
published the way its Kubernetes source publishes them. What is checked is what a user sees:
a denied HTTP request gets 403 and never reaches the app, a denied opaque connection is
closed before a byte reaches the app, an allowed one goes through, a policy change applies
to the next request, and `inbound_{http,tcp}_authz_{allow,deny}_total` count each decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.unit.proxy.sockets.harness import Client, proxy

from lacewing.controller.policy import Hub, PolicyServer, index_from_objects
from lacewing.core.policy_index import PolicyConfig
from lacewing.proxy.policy.client import PolicyClient
from lacewing.proxy.server import ProxyServer


@dataclass
class App:
    """Answers HTTP requests with 200 and counts every byte it receives."""

    received: int = 0
    server: asyncio.Server | None = None
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.handlers):
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while data := await reader.read(65536):
                self.received += len(data)
                if b"\r\n\r\n" in data:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                else:
                    writer.write(data)  # an echo for opaque bytes
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.handlers.discard(task)
            writer.close()


def _pod(port: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"containers": [{"ports": [{"name": "http", "containerPort": port}]}]},
    }


def _server(port: int) -> dict[str, Any]:
    return {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": "Server",
        "metadata": {"name": "web-http", "namespace": "shop"},
        "spec": {"podSelector": {}, "port": port},
    }


LOOPBACK_AUTHZ = [
    {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "loopback-in", "namespace": "shop"},
        "spec": {
            "targetRef": {"group": "policy.lacewing.io", "kind": "Server", "name": "web-http"},
            "requiredAuthenticationRefs": [
                {"group": "policy.lacewing.io", "kind": "NetworkAuthentication", "name": "lo"}
            ],
        },
    },
    {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": "NetworkAuthentication",
        "metadata": {"name": "lo", "namespace": "shop"},
        "spec": {"networks": [{"cidr": "127.0.0.0/8"}]},
    },
]


@dataclass
class Bed:
    hub: Hub
    app: App
    proxy: ProxyServer

    def publish(self, *resources: dict[str, Any]) -> None:
        index, problems = index_from_objects(resources, [_pod(self.app.port)], [], PolicyConfig())
        assert not problems, problems
        self.hub.publish(index)

    def count(self, family: str) -> int:
        lines = [m for m in self.proxy.metrics.render() if m.startswith(family + "{")]
        return sum(int(float(m.rsplit(" ", 1)[1])) for m in lines)

    async def get(self) -> int:
        client = await Client.open(self.proxy.bound["inbound"].port)
        try:
            await client.send(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
            status, _, _ = await client.response()
            return status
        finally:
            await client.close()


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    app = App()
    await app.start()
    hub = Hub()
    policy = PolicyServer(hub, "127.0.0.1", 0, heartbeat=0.2)
    await policy.start()
    env = {
        "LACEWING_PROXY_INBOUND_FIXED_DST": f"127.0.0.1:{app.port}",
        "LACEWING_PROXY_POLICY_ADDR": f"127.0.0.1:{policy.bound_port}",
        "LACEWING_PROXY_POD_NAME": "web-0",
        "LACEWING_PROXY_POD_NAMESPACE": "shop",
        "LACEWING_PROXY_DEFAULT_INBOUND_POLICY": "deny",
    }
    try:
        async with proxy(env) as server:
            yield Bed(hub, app, server)
    finally:
        await policy.stop()
        await app.stop()


async def _until(predicate: Any, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_a_server_without_authorization_denies_http_with_403_and_the_app_sees_nothing(
    bed: Bed,
) -> None:
    bed.publish(_server(bed.app.port))
    assert await bed.get() == 403  # before the answer: default deny; after: the Server denies
    await asyncio.sleep(0.3)
    assert await bed.get() == 403
    assert bed.app.received == 0
    assert bed.count("inbound_http_authz_deny_total") == 2
    bed.publish(_server(bed.app.port), *LOOPBACK_AUTHZ)  # now loopback clients are allowed
    await _until(lambda: asyncio.ensure_future(asyncio.sleep(0)) is not None)

    async def allowed() -> bool:
        return await bed.get() == 200

    async with asyncio.timeout(3.0):
        while not await allowed():
            await asyncio.sleep(0.05)
    assert bed.app.received > 0
    assert bed.count("inbound_http_authz_allow_total") >= 1
    text = "\n".join(bed.proxy.metrics.render())
    assert 'srv_name="web-http",authz_kind="authorizationpolicy",authz_name="loopback-in"' in text


async def test_a_denied_opaque_connection_is_closed_before_a_byte_reaches_the_app(
    bed: Bed,
) -> None:
    bed.publish(_server(bed.app.port))
    await asyncio.sleep(0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", bed.proxy.bound["inbound"].port)
    try:
        writer.write(b"\x00\x01 not http at all\r\n")  # detected as opaque
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        async with asyncio.timeout(15.0):
            assert await reader.read(100) == b""  # closed by the proxy
    finally:
        writer.close()
    assert bed.app.received == 0
    assert bed.count("inbound_tcp_authz_deny_total") == 1
    # (the proxy then shuts down while its policy stream is just starting: that once hung)


async def test_the_first_request_waits_for_the_first_policy_instead_of_the_default(
    bed: Bed,
) -> None:
    """The default is deny; the controller already allows loopback: the very first request
    (whose port's stream starts with it) is decided by the controller's answer, not by the
    default that applies only because nobody asked yet."""
    bed.publish(_server(bed.app.port), *LOOPBACK_AUTHZ)
    assert await bed.get() == 200
    assert bed.count("inbound_http_authz_deny_total") == 0


async def test_the_wait_for_a_silent_controller_is_bounded_then_the_default_applies() -> None:
    app = App()
    await app.start()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, never answers (a controller that hangs)
        writer.close()

    controller = await asyncio.start_server(silent, "127.0.0.1", 0)
    env = {
        "LACEWING_PROXY_INBOUND_FIXED_DST": f"127.0.0.1:{app.port}",
        "LACEWING_PROXY_POLICY_ADDR": f"127.0.0.1:{controller.sockets[0].getsockname()[1]}",
        "LACEWING_PROXY_POLICY_WAIT": "300ms",
        "LACEWING_PROXY_POD_NAME": "web-0",
        "LACEWING_PROXY_POD_NAMESPACE": "shop",
        "LACEWING_PROXY_DEFAULT_INBOUND_POLICY": "deny",
    }
    try:
        async with proxy(env) as server:
            bed = Bed(Hub(), app, server)
            started = time.monotonic()
            assert await bed.get() == 403  # the default (deny), after the bounded wait
            waited = time.monotonic() - started
            assert 0.25 < waited < 2.0, waited
            started = time.monotonic()
            assert await bed.get() == 403  # a port waits once, not on every connection
            assert time.monotonic() - started < 0.2
            assert app.received == 0
    finally:
        controller.close()
        await app.stop()


async def test_the_pods_ports_get_their_policy_before_any_client() -> None:
    app = App()
    await app.start()
    hub = Hub()
    index, _ = index_from_objects([_server(app.port)], [_pod(app.port)], [], PolicyConfig())
    hub.publish(index)
    policy = PolicyServer(hub, "127.0.0.1", 0, heartbeat=0.2)
    await policy.start()
    env = {
        "LACEWING_PROXY_INBOUND_FIXED_DST": f"127.0.0.1:{app.port}",
        "LACEWING_PROXY_POLICY_ADDR": f"127.0.0.1:{policy.bound_port}",
        "LACEWING_PROXY_POD_NAME": "web-0",
        "LACEWING_PROXY_POD_NAMESPACE": "shop",
        "LACEWING_PROXY_INBOUND_PORTS": str(app.port),
    }
    try:
        async with proxy(env) as server:
            feed = server.sides[0].policy_client
            assert isinstance(feed, PolicyClient)
            await _until(lambda: feed.answered(app.port))
            known = feed.watch(app.port).policy
            assert known is not None and known.server_name == "web-http"  # nobody connected
            assert app.received == 0
    finally:
        await policy.stop()
        await app.stop()


async def test_the_admin_server_shows_what_each_port_enforces(bed: Bed) -> None:
    from lacewing.local.netns import http_get

    bed.publish(_server(bed.app.port), *LOOPBACK_AUTHZ)
    assert await bed.get() == 200
    admin = bed.proxy.bound["admin"].port
    status, body = await asyncio.to_thread(http_get, "127.0.0.1", admin, "/policy", timeout=5)
    assert status == 200
    (port,) = json.loads(body)["ports"]
    assert port["port"] == bed.app.port and port["source"] == "controller" and port["connected"]
    assert port["policy"]["server"] == {"kind": "server", "name": "web-http"}
    assert [a["name"] for a in port["policy"]["authorizations"]] == ["loopback-in"]
