"""The real proxy's route layer on loopback: splits, matches, filters, timeouts and retries.

A destination server (loopback) knows Services `web` (cluster IP 127.43.0.10:80, the parent
the routes attach to) and `canary`, `slow`, `flaky` as backends, each one loopback app. The
proxy's outbound listener takes 127.43.0.10:80 as every connection's original destination
(a patched `original_dst`; no root here), and the routes come over the destination stream
exactly as in a pod. What is asserted is what the client and the apps saw, and the
proxy's own /metrics text.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.unit.proxy.sockets.harness import Client, proxy

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


@dataclass
class App:
    """A keep-alive HTTP/1.1 app: answers its name (and the x-route header it got);
    `delay` before answering, `fail_every` n-th request answered 503."""

    name: str
    delay: float = 0.0
    fail_every: int = 0
    trickle: float = 0.0  # answer the head, then hold the rest of the body this long
    # "reset" / "close" / "garbage": each request read is answered with an RST, a FIN or
    # bytes that are no HTTP; "once": one request per connection, a second one on it closes
    # it unanswered (a keep-alive connection the app dropped as it was reused); "first": only
    # the first request the app gets is reset
    broken: str = ""
    requests: int = 0
    methods: Counter[str] = field(default_factory=Counter)
    cancelled: int = 0  # requests whose client (the proxy) went away before the answer
    server: asyncio.Server | None = None
    port: int = 0
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self, host: str) -> None:
        self.server = await asyncio.start_server(self._serve, host, 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for task in list(self.handlers):
                task.cancel()
            await asyncio.gather(*self.handlers, return_exceptions=True)
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        served = 0
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}  # fmt: skip
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                self.methods[lines[0].split()[0]] += 1
                served += 1
                if self.broken == "first" and self.requests > 1:
                    pass  # "first": only the app's first request is reset
                elif self.broken and (self.broken != "once" or served > 1):
                    if self.broken in ("reset", "first"):
                        sock = writer.get_extra_info("socket")
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))  # fmt: skip
                        writer.transport.abort()
                    elif self.broken == "garbage":
                        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
                    return
                if self.delay:
                    try:
                        await asyncio.wait_for(reader.read(1), self.delay)
                        self.cancelled += 1  # EOF (or bytes) while we slept: the proxy gave up
                        return
                    except TimeoutError:
                        pass
                status = 200
                if self.fail_every and self.requests % self.fail_every == 0:
                    status = 503
                body = f"{self.name} {headers.get('x-route', '-')}".encode()
                if self.trickle:
                    writer.write(b"HTTP/1.1 200 X\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(body) + 4, body))  # fmt: skip
                    await writer.drain()
                    try:
                        await asyncio.wait_for(reader.read(1), self.trickle)
                        self.cancelled += 1  # the proxy cut the response mid-body
                        return
                    except TimeoutError:
                        body = b"rest"
                writer.write(body if self.trickle else
                             b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s"
                             % (status, len(body), body))  # fmt: skip
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.handlers.discard(task)
            writer.close()


def route(name: str, rules: list[dict[str, Any]], **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
        "spec": {"parentRefs": [{"kind": "Service", "group": "", "name": "web", "port": 80}],
                 "rules": rules},
    }  # fmt: skip


def to(*weighted: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"name": name, "port": 80, "weight": weight} for name, weight in weighted]


@dataclass
class Bed:
    hub: Hub
    proxy: ProxyServer
    apps: dict[str, App]

    def publish(self, *routes: dict[str, Any], web_annotations: dict[str, str] | None = None
                ) -> None:  # fmt: skip
        services, pods = [], []
        for i, (name, app) in enumerate(self.apps.items()):
            ip = f"127.0.0.{i + 1}"
            vip = VIP.host if name == "web" else f"127.43.0.{20 + i}"
            notes = (web_annotations or {}) if name == "web" else {}
            services.append(Service(name, "shop", vip, (ServicePort(80, 80, "http"),),
                                    (Backend(ip, True, {"http": app.port}, name),),
                                    annotations=notes))  # fmt: skip
            pods.append(PodInfo(name, "shop", ip, None, "Deployment", name))
        # `pair`: the canary and the bad app behind one Service (two endpoints)
        apps = enumerate(self.apps.items())
        pair = [Backend(f"127.0.0.{i + 1}", True, {"http": app.port}, name)
                for i, (name, app) in apps if name in ("canary", "bad")]  # fmt: skip
        services.append(Service("pair", "shop", "127.43.0.99", (ServicePort(80, 80, "http"),),
                                tuple(pair)))  # fmt: skip
        docs, verdicts = accept(list(routes), services)
        assert all(v.accepted for v in verdicts), verdicts
        self.hub.publish(Directory(tuple(services), tuple(pods), docs))

    async def routes_applied(self, timeout: float = 1.0) -> float:
        """Seconds until the proxy holds the routes last published."""
        discovery = self.proxy.sides[1].discovery
        assert isinstance(discovery, OutboundDiscovery)
        _table, seen = discovery.routes(VIP)
        started = time.monotonic()
        while discovery.routes(VIP)[1] == seen:
            assert time.monotonic() - started < timeout, "routes not applied in time"
            await asyncio.sleep(0.005)
        return time.monotonic() - started

    @property
    def port(self) -> int:
        return self.proxy.bound["outbound"].port

    def metrics(self) -> str:
        return "\n".join(self.proxy.metrics.render())


async def request(client: Client, target: str = "/", method: str = "GET", body: bytes = b"",
                  headers: str = "") -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
    await client.send(f"{method} {target} HTTP/1.1\r\nHost: web.shop\r\n{headers}{length}\r\n"
                      .encode() + body)  # fmt: skip
    return await client.response()


@pytest.fixture
async def bed(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bed]:
    apps = {"web": App("web"), "canary": App("canary"), "slow": App("slow", delay=2.0),
            "flaky": App("flaky", fail_every=5), "bad": App("bad", fail_every=1)}  # fmt: skip
    for i, app in enumerate(apps.values()):
        await app.start(f"127.0.0.{i + 1}")
    hub = Hub()
    destination = DestinationServer(hub, "127.0.0.1", 0, heartbeat=0.5)
    await destination.start()
    monkeypatch.setattr(proxy_accept, "original_dst", lambda sock: VIP)
    env = {"LACEWING_PROXY_DESTINATION_ADDR": f"127.0.0.1:{destination.bound_port}"}
    try:
        async with proxy(env) as server:
            bed = Bed(hub, server, apps)
            bed.publish()
            discovery = server.sides[1].discovery
            assert isinstance(discovery, OutboundDiscovery)
            assert await discovery.client.resolve(str(VIP)).first_answer(2.0)
            yield bed
    finally:
        await destination.stop()
        for app in apps.values():
            await app.stop()


async def test_a_weighted_split_is_followed_and_changed_without_failures(bed: Bed) -> None:
    bed.publish(route("split", [{"backendRefs": to(("web", 90), ("canary", 10))}]))
    await bed.routes_applied()
    client = await Client.open(bed.port)
    try:
        seen = Counter([(await request(client))[2].split()[0] for _ in range(1000)])
        assert seen[b"web"] + seen[b"canary"] == 1000
        assert 850 <= seen[b"web"] <= 950, seen  # 90% within 5 points
        bed.publish(route("split", [{"backendRefs": to(("web", 50), ("canary", 50))}]))
        assert await bed.routes_applied() < 1.0
        answers = [await request(client) for _ in range(600)]
    finally:
        await client.close()
    assert {status for status, _, _ in answers} == {200}
    after = Counter(body.split()[0] for _, _, body in answers)
    assert 240 <= after[b"canary"] <= 360, after
    metrics = bed.metrics()
    assert ('outbound_http_route_backend_requests_total{parent_namespace="shop",'
            'parent_name="web",parent_port="80",route_kind="HTTPRoute",route_namespace="shop",'
            'route_name="split",backend_namespace="shop",backend_name="canary",'
            'backend_port="80"}') in metrics  # fmt: skip
    assert 'route_request_total{direction="outbound",dst="127.43.0.10:80",rt_route="split"} 1600' \
        in metrics  # fmt: skip
    assert "outbound_http_route_request_duration_seconds_count{" in metrics


async def test_matches_filters_and_redirects(bed: Bed) -> None:
    bed.publish(route("match", [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"},
                      "headers": [{"name": "x-canary", "value": "yes"}]}],
         "backendRefs": to(("canary", 1)),
         "filters": [{"type": "RequestHeaderModifier",
                      "requestHeaderModifier": {"set": [{"name": "x-route", "value": "canary"}]}},
                     {"type": "ResponseHeaderModifier",
                      "responseHeaderModifier": {"add": [{"name": "x-served-by", "value": "c"}]}}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
         "backendRefs": to(("web", 1))},
        {"matches": [{"path": {"type": "Exact", "value": "/old"}}],
         "filters": [{"type": "RequestRedirect",
                      "requestRedirect": {"path": {"type": "ReplaceFullPath",
                                                   "replaceFullPath": "/new"},
                                          "statusCode": 301}}]},
    ]))  # fmt: skip
    await bed.routes_applied()
    client = await Client.open(bed.port)
    try:
        status, headers, body = await request(client, "/api/x", headers="X-Canary: yes\r\n")
        assert (status, body, headers.get("x-served-by")) == (200, b"canary canary", "c")
        status, headers, body = await request(client, "/api/x")
        assert (status, body, "x-served-by" in headers) == (200, b"web -", False)
        status, headers, _ = await request(client, "/old?q=1")
        assert (status, headers["location"]) == (301, "http://web.shop/new?q=1")
        status, headers, _ = await request(client, "/elsewhere")
        assert status == 404 and "no route" in headers["l5d-proxy-error"]
        status, _, body = await request(client, "/api/x")  # the same connection goes on
        assert (status, body) == (200, b"web -")
    finally:
        await client.close()


async def test_a_request_timeout_answers_504_in_time_and_cancels_upstream(bed: Bed) -> None:
    bed.publish(route("slow", [{"backendRefs": to(("slow", 1)), "timeouts": {"request": "200ms"}}]))
    await bed.routes_applied()
    client = await Client.open(bed.port)
    try:
        started = time.monotonic()
        status, headers, _ = await request(client)
        elapsed = time.monotonic() - started
    finally:
        await client.close()
    assert status == 504 and headers["l5d-proxy-error"] == "request timed out"
    assert 0.2 <= elapsed <= 0.26, elapsed
    assert "connection" not in headers  # a GET: the client's connection stays open
    for _ in range(100):  # the app notices the proxy hung up, long before its 2 s
        if bed.apps["slow"].cancelled:
            break
        await asyncio.sleep(0.01)
    assert bed.apps["slow"].cancelled == 1
    assert 'rt_route="slow",status_code="504",classification="failure"} 1' in bed.metrics()


async def test_a_request_timeout_also_cuts_a_response_body_still_streaming(bed: Bed) -> None:
    web = bed.apps["web"]
    bed.publish(route("web", [{"backendRefs": to(("web", 1)), "timeouts": {"request": "300ms"}}]))
    await bed.routes_applied()
    client = await Client.open(bed.port)
    try:
        web.trickle = 0.1  # the whole response within the deadline: untouched
        status, _, body = await request(client)
        assert (status, body) == (200, b"web -rest")
        status, _, body = await request(client)  # and the connection goes on
        assert (status, body) == (200, b"web -rest")
        web.trickle = 2.0  # the head in time, the rest of the body not
        await client.send(b"GET / HTTP/1.1\r\nHost: web.shop\r\n\r\n")
        started = time.monotonic()
        data = b""
        async with asyncio.timeout(1.5):
            while chunk := await client.reader.read(65536):
                data += chunk
        elapsed = time.monotonic() - started
    finally:
        web.trickle = 0.0
        await client.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"web -")  # truncated
    assert 0.3 <= elapsed <= 0.4, elapsed  # the client's connection closed at the deadline
    for _ in range(100):
        if web.cancelled:
            break
        await asyncio.sleep(0.01)
    assert web.cancelled == 1  # the app saw its connection closed


async def test_own_answers_to_requests_with_bodies_keep_the_connection_when_the_body_is_read(
    bed: Bed,
) -> None:
    bed.publish(route("slow", [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/slow"}}],
         "backendRefs": to(("slow", 1)), "timeouts": {"request": "200ms"}},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/web"}}],
         "backendRefs": to(("web", 1))}]))  # fmt: skip
    await bed.routes_applied()
    client = await Client.open(bed.port)
    try:
        status, headers, _ = await request(client, "/slow", method="POST", body=b"x" * 5000)
        assert status == 504 and "connection" not in headers  # the whole body had arrived
        status, _, body = await request(client, "/web", method="POST", body=b"y" * 10)
        assert (status, body.split()[0]) == (200, b"web")  # the same connection goes on
        # No rule matches, decided at the head: a small body is read (and dropped) first.
        status, headers, _ = await request(client, "/none", method="POST", body=b"z" * 3000)
        assert status == 404 and "connection" not in headers
        status, _, body = await request(client, "/web", method="POST", body=b"y" * 10)
        assert (status, body.split()[0]) == (200, b"web")
        assert bed.apps["web"].methods["POST"] == 2  # the dropped body never reached it
        # A body too big to wait for, or of unknown length: answered, and the connection closes.
        status, headers, _ = await request(client, "/none", method="POST", body=b"z" * 70000)
        assert status == 404 and headers.get("connection") == "close"
    finally:
        await client.close()
    client = await Client.open(bed.port)
    try:
        await client.send(b"POST /none HTTP/1.1\r\nHost: web.shop\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")  # fmt: skip
        status, headers, _ = await client.response()
        assert status == 404 and headers.get("connection") == "close"
    finally:
        await client.close()
    # A timeout while the upload is still under way: 504 at the deadline, not after the body.
    client = await Client.open(bed.port)
    try:
        await client.send(b"POST /slow HTTP/1.1\r\nHost: web.shop\r\n"
                          b"Content-Length: 1000\r\n\r\n" + b"x" * 10)  # fmt: skip
        started = time.monotonic()
        status, headers, _ = await client.response()
        elapsed = time.monotonic() - started
    finally:
        await client.close()
    assert status == 504 and headers.get("connection") == "close"
    assert 0.2 <= elapsed <= 0.26, elapsed


async def test_retries_hide_a_flaky_backend_within_budget_but_never_replay_big_bodies(
    bed: Bed,
) -> None:
    retry = {"retry.lacewing.io/http": "5xx", "retry.lacewing.io/limit": "2"}
    bed.publish(route("flaky", [{"backendRefs": to(("flaky", 1))}], **retry))
    await bed.routes_applied()
    flaky = bed.apps["flaky"]
    client = await Client.open(bed.port)
    try:
        statuses = Counter([(await request(client))[0] for _ in range(500)])
    finally:
        await client.close()
    assert statuses[200] >= 495, statuses  # >= 99%
    retries = flaky.requests - 500
    assert 0 < retries <= 0.2 * 500 + 100  # within the budget: 20% of requests + 10/s * 10 s
    assert f'route_name="flaky"}} {retries}' in bed.metrics()  # retry_requests_total

    flaky.fail_every, flaky.requests = 1, 0  # now every request fails
    client = await Client.open(bed.port)
    try:
        status, _, _ = await request(client, method="POST", body=b"x" * (1024 * 1024))
    finally:
        await client.close()
    assert status == 503 and flaky.methods["POST"] == 1  # a 1 MB body is not replayed


async def test_injected_aborts_and_delays(bed: Bed) -> None:
    abort = {"abort": {"percent": 10, "httpStatus": 500}}
    fault = route(
        "fault",
        [
            {
                "backendRefs": to(("web", 1)),
                "filters": [{"type": "FaultInjection", "faultInjection": abort}],
            }
        ],
    )
    fault["apiVersion"] = "policy.lacewing.io/v1beta1"  # our filter, in our group
    bed.publish(fault)
    await bed.routes_applied()
    client = await Client.open(bed.port)
    try:  # one connection: the proxy's own answers to body-less requests keep it open
        statuses = Counter([(await request(client))[0] for _ in range(2000)])
    finally:
        await client.close()
    assert statuses[200] + statuses[500] == 2000
    assert 140 <= statuses[500] <= 260, statuses  # 10% within 3 points
    assert bed.apps["web"].requests == statuses[200]  # aborted requests never left the proxy

    delayed = route("fault", [{"backendRefs": to(("web", 1)), "filters": [
        {"type": "FaultInjection",
         "faultInjection": {"delay": {"percent": 100, "fixedDelay": "100ms"}}}]}])  # fmt: skip
    delayed["apiVersion"] = "policy.lacewing.io/v1beta1"
    bed.publish(delayed)
    await bed.routes_applied()
    client = await Client.open(bed.port)
    try:
        started = time.monotonic()
        status, _, body = await request(client)
        elapsed = time.monotonic() - started
    finally:
        await client.close()
    assert (status, body) == (200, b"web -") and 0.1 <= elapsed < 0.2, elapsed


async def test_failure_accrual_ejects_a_failing_endpoint_and_probes_it_back(bed: Bed) -> None:
    accrual = {"balancer.lacewing.io/failure-accrual": "consecutive",
               "balancer.lacewing.io/failure-accrual-consecutive-max-failures": "3"}  # fmt: skip
    bed.publish(route("pair", [{"backendRefs": to(("pair", 1))}], **accrual))
    await bed.routes_applied()
    bad, good = bed.apps["bad"], bed.apps["canary"]
    served_before = good.requests
    discovery = bed.proxy.sides[1].discovery
    assert isinstance(discovery, OutboundDiscovery)
    pair = "pair.shop.svc.cluster.local:80"
    client = await Client.open(bed.port)
    try:
        statuses = Counter([(await request(client))[0] for _ in range(200)])
        assert discovery.ejected_backends(pair) == [Addr("127.0.0.5", bad.port)]
        # ejected after 3 failures in a row; one probe more if this outlasted the backoff
        assert 3 <= bad.requests <= 4
        assert statuses[503] == bad.requests and statuses[200] == 200 - bad.requests
        assert good.requests - served_before == statuses[200]  # the rest went to the canary
        bad.fail_every = 0  # it recovers
        await asyncio.sleep(1.55)  # the first backoff: 1 s, up to 1.5 s with its jitter
        before = bad.requests
        answers = Counter([(await request(client))[0] for _ in range(100)])
    finally:
        await client.close()
    assert answers == {200: 100}
    assert bad.requests - before >= 1  # the probe went to it, and succeeded:
    assert discovery.ejected_backends(pair) == []  # it is back among the endpoints
    # (peak-EWMA then warms it up gradually: its load estimate starts at the default RTT)


async def test_each_attempt_has_the_backend_request_timeout_and_is_retried(bed: Bed) -> None:
    retry = {"retry.lacewing.io/http": "gateway-error", "retry.lacewing.io/limit": "2"}
    bed.publish(route("tries", [{"backendRefs": to(("slow", 1)),
                                 "timeouts": {"request": "1s", "backendRequest": "100ms"}}],
                      **retry))  # fmt: skip
    await bed.routes_applied()
    client = await Client.open(bed.port)
    try:
        started = time.monotonic()
        status, headers, _ = await request(client)
        elapsed = time.monotonic() - started
    finally:
        await client.close()
    assert status == 504 and headers["l5d-proxy-error"] == "backend request timed out"
    assert 0.3 <= elapsed <= 0.36, elapsed  # three attempts of 100 ms each
    slow = bed.apps["slow"]
    for _ in range(100):
        if slow.cancelled == 3:
            break
        await asyncio.sleep(0.01)
    assert (slow.requests, slow.cancelled) == (3, 3)  # each attempt was cut at the backend
    assert 'route_name="tries"} 2' in bed.metrics()  # retry_requests_total


async def test_service_annotations_time_out_and_retry_requests_without_a_route(bed: Bed) -> None:
    web = bed.apps["web"]
    notes = {"timeout.lacewing.io/request": "200ms", "retry.lacewing.io/http": "5xx",
             "retry.lacewing.io/limit": "2"}  # fmt: skip
    bed.publish(web_annotations=notes)  # no HTTPRoute at all
    await bed.routes_applied()
    web.fail_every = 5
    client = await Client.open(bed.port)
    try:
        statuses = Counter([(await request(client))[0] for _ in range(200)])
        assert statuses[200] >= 198, statuses  # every 5th 503 was retried
        assert web.requests > 200
        web.delay = 2.0
        started = time.monotonic()
        status, headers, _ = await request(client)
        elapsed = time.monotonic() - started
    finally:
        web.delay, web.fail_every = 0.0, 0
        await client.close()
    assert status == 504 and headers["l5d-proxy-error"] == "request timed out"
    assert 0.2 <= elapsed <= 0.26, elapsed
    assert 'route_name="service-default"' in bed.metrics()

    bed.publish()  # the annotations are gone: no route, no timeout
    await bed.routes_applied()
    web.fail_every, web.requests = 2, 0
    client = await Client.open(bed.port)
    try:
        statuses = Counter([(await request(client))[0] for _ in range(10)])
    finally:
        web.fail_every = 0
        await client.close()
    assert statuses == {200: 5, 503: 5} and web.requests == 10  # nothing retried now
