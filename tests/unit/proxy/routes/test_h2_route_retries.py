"""HTTP/2 requests the endpoint resets or drops before answering: retried when the route
retries 5xx, through the real proxy on loopback.

The bed: a destination server on loopback with one Service `web` (127.43.0.10:80, every
connection's original destination) whose endpoint is a raw h2c server (`h2` library) that
misbehaves on its first requests: it resets the stream (RST_STREAM INTERNAL_ERROR) or closes
the whole connection without answering, then answers 200 "ok". The client is a plain HTTP/2
connection to the proxy's outbound listener. What is asserted is what the client got, how
many requests the endpoint saw, and the proxy's route retry counter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
from h2.errors import ErrorCodes
from tests.unit.proxy.sockets.harness import proxy

from lacewing.controller.destination import (
    Backend,
    DestinationServer,
    Directory,
    Hub,
    PodInfo,
    Service,
    ServicePort,
)
from lacewing.controller.destination.routes import accept
from lacewing.proxy import accept as proxy_accept
from lacewing.proxy.config import Addr
from lacewing.proxy.discovery.outbound import OutboundDiscovery
from lacewing.proxy.server import ProxyServer

VIP = Addr("127.43.0.10", 80)
GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"web.shop"),
       (b":path", b"/")]  # fmt: skip


@dataclass
class App:
    """h2c: the first `bad` requests are reset (`how` "reset") or dropped ("drop")."""

    how: str = "reset"
    bad: int = 0
    requests: int = 0
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                for ev in conn.receive_data(data):
                    if not isinstance(ev, h2.events.RequestReceived):
                        continue
                    self.requests += 1
                    if self.requests <= self.bad and self.how == "drop":
                        return  # the connection closes with the request unanswered
                    if self.requests <= self.bad:
                        conn.reset_stream(ev.stream_id, ErrorCodes.INTERNAL_ERROR)
                        continue
                    conn.send_headers(ev.stream_id, [(b":status", b"200"),
                                                     (b"content-length", b"2")])  # fmt: skip
                    conn.send_data(ev.stream_id, b"ok", end_stream=True)
                writer.write(conn.data_to_send())
        except ConnectionError:
            pass
        finally:
            writer.close()


async def h2_get(port: int) -> tuple[str, bytes]:
    """One HTTP/2 GET to the proxy: ("200", body), or ("reset N", b"") when it reset it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    conn.send_headers(1, GET, end_stream=True)
    writer.write(conn.data_to_send())
    status, body = "", b""
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), 5.0)
            assert data, "the proxy closed the connection"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers)[b":status"].decode()
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    return status, body
                elif isinstance(ev, h2.events.StreamReset):
                    return f"reset {ev.error_code}", body
            writer.write(conn.data_to_send())
    finally:
        writer.close()


@dataclass
class Bed:
    hub: Hub
    proxy: ProxyServer
    app: App

    def publish(self, **annotations: str) -> None:
        web = Service("web", "shop", VIP.host, (ServicePort(80, 80, "http"),),
                      (Backend("127.0.0.1", True, {"http": self.app.port}, "web-0"),))  # fmt: skip
        route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                 "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
                 "spec": {"parentRefs": [{"kind": "Service", "group": "", "name": "web",
                                          "port": 80}], "rules": [{}]}}  # fmt: skip
        docs, verdicts = accept([route], [web])
        assert all(v.accepted for v in verdicts), verdicts
        pod = PodInfo("web-0", "shop", "127.0.0.1", None, "Deployment", "web")
        self.hub.publish(Directory((web,), (pod,), docs))

    async def routes_applied(self) -> None:
        discovery = self.proxy.sides[1].discovery
        assert isinstance(discovery, OutboundDiscovery)
        async with asyncio.timeout(2.0):
            while discovery.routes(VIP)[0] is None:
                await asyncio.sleep(0.005)

    def retries(self) -> int:
        name = "outbound_http_route_retry_requests_total{"
        lines = [x for x in self.proxy.metrics.render() for x in x.split("\n")]
        found = [x for x in lines if x.startswith(name) and 'route_name="web"' in x]
        return sum(int(float(x.rsplit(" ", 1)[1])) for x in found)


@pytest.fixture
async def bed(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bed]:
    app = App()
    server = await asyncio.start_server(app.serve, "127.0.0.1", 0)
    app.port = server.sockets[0].getsockname()[1]
    hub = Hub()
    destination = DestinationServer(hub, "127.0.0.1", 0, heartbeat=0.5)
    await destination.start()
    monkeypatch.setattr(proxy_accept, "original_dst", lambda sock: VIP)
    env = {"LACEWING_PROXY_DESTINATION_ADDR": f"127.0.0.1:{destination.bound_port}"}
    try:
        async with proxy(env) as running:
            yield Bed(hub, running, app)
    finally:
        await destination.stop()
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


RETRY: dict[str, Any] = {"retry.lacewing.io/http": "5xx", "retry.lacewing.io/limit": "2"}


@pytest.mark.parametrize("how", ["reset", "drop"])
async def test_a_request_reset_or_dropped_before_an_answer_is_retried(bed: Bed, how: str) -> None:
    bed.app.how, bed.app.bad = how, 1
    bed.publish(**RETRY)
    await bed.routes_applied()
    assert await h2_get(bed.proxy.bound["outbound"].port) == ("200", b"ok")
    assert bed.app.requests == 2 and bed.retries() == 1
    # (the failed attempt counts against the endpoint as any reset or drop before an answer
    # does: a second one in a row would eject this only endpoint, and the retry find none)


async def test_without_a_retrying_route_the_client_gets_the_reset(bed: Bed) -> None:
    bed.app.bad = 1
    bed.publish()
    await bed.routes_applied()
    got = await h2_get(bed.proxy.bound["outbound"].port)
    assert got == (f"reset {ErrorCodes.INTERNAL_ERROR}", b"")
    assert bed.app.requests == 1 and bed.retries() == 0
