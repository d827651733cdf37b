"""GRPCRoutes (and HTTPRoutes over HTTP/2) through the real proxy on loopback, with grpcio.

The bed is `test_route_proxy`'s (a destination server on loopback, Services `web` at
127.43.0.10:80 and its backends, the proxy's outbound listener taking 127.43.0.10:80 as every
connection's original destination), except that every app is a real grpcio server of the
raw-bytes service `lw.Echo` and the client is a real grpcio channel to the proxy:

    Who      answers the app's name (and the `x-route` metadata it got, after a colon)
    Slow     sleeps 2 s, watching whether the call is cancelled meanwhile
    Flaky    aborts UNAVAILABLE on every `fail_every`-th call

What is asserted is what the client and the apps saw, and the proxy's /metrics text.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
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
from lacewing.core.routes import RouteError, parse_route
from lacewing.proxy import accept as proxy_accept
from lacewing.proxy.config import Addr
from lacewing.proxy.discovery.outbound import OutboundDiscovery
from lacewing.proxy.server import ProxyServer

VIP = Addr("127.43.0.10", 80)
SERVICE = "lw.Echo"


@dataclass
class App:
    name: str
    fail_every: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    cancelled: int = 0
    server: Any = None
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _count(self, method: str) -> int:
        with self.lock:
            self.calls[method] += 1
            return self.calls[method]

    def _who(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._count("Who")
        sent = dict(context.invocation_metadata()).get("x-route", "-")
        return f"{self.name}:{sent}".encode()

    def _slow(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._count("Slow")
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            if not context.is_active():
                with self.lock:
                    self.cancelled += 1
                return b""
            time.sleep(0.01)
        return self.name.encode()

    def _flaky(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        n = self._count("Flaky")
        if self.fail_every and n % self.fail_every == 0:
            context.abort(grpc.StatusCode.UNAVAILABLE, "flaky")
        return self.name.encode()

    def start(self, host: str) -> None:
        handlers = {
            "Who": grpc.unary_unary_rpc_method_handler(self._who),
            "Slow": grpc.unary_unary_rpc_method_handler(self._slow),
            "Flaky": grpc.unary_unary_rpc_method_handler(self._flaky),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, handlers)]
        )
        self.port = self.server.add_insecure_port(f"{host}:0")
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(0).wait(5)


def grpc_route(name: str, rules: list[dict[str, Any]], group: str = "gateway.networking.k8s.io",
               **annotations: str) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": f"{group}/v1",
        "kind": "GRPCRoute",
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

    def publish(self, *routes: dict[str, Any]) -> None:
        services, pods = [], []
        for i, (name, app) in enumerate(self.apps.items()):
            ip = f"127.0.0.{i + 1}"
            vip = VIP.host if name == "web" else f"127.43.0.{20 + i}"
            services.append(Service(name, "shop", vip, (ServicePort(80, 80, "grpc"),),
                                    (Backend(ip, True, {"grpc": app.port}, name),)))  # fmt: skip
            pods.append(PodInfo(name, "shop", ip, None, "Deployment", name))
        # `pair`: bad and canary behind one Service (failure accrual picks between them)
        pair = tuple(Backend(f"127.0.0.{i + 1}", True, {"grpc": app.port}, name)
                     for i, (name, app) in enumerate(self.apps.items())
                     if name in ("bad", "canary"))  # fmt: skip
        services.append(Service("pair", "shop", "127.43.0.40", (ServicePort(80, 80, "grpc"),),
                                pair))  # fmt: skip
        docs, verdicts = accept(list(routes), services)
        assert all(v.accepted for v in verdicts), verdicts
        self.hub.publish(Directory(tuple(services), tuple(pods), docs))

    async def routes_applied(self, timeout: float = 1.0) -> None:
        discovery = self.proxy.sides[1].discovery
        assert isinstance(discovery, OutboundDiscovery)
        _table, seen = discovery.routes(VIP)
        started = time.monotonic()
        while discovery.routes(VIP)[1] == seen:
            assert time.monotonic() - started < timeout, "routes not applied in time"
            await asyncio.sleep(0.005)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.proxy.bound['outbound'].port}"

    def metrics(self) -> str:
        return "\n".join(self.proxy.metrics.render())

    async def calls(
        self, method: str, n: int, timeout: float = 5.0, metadata: tuple[tuple[str, str], ...] = ()
    ) -> list[tuple[str, str]]:
        """`n` calls of `method` on one channel (in a thread: grpcio blocks): per call, the
        status code's name and the answer."""

        def run() -> list[tuple[str, str]]:
            out = []
            with grpc.insecure_channel(self.target) as channel:
                call: Callable[..., bytes] = channel.unary_unary(f"/{SERVICE}/{method}")
                for _ in range(n):
                    try:
                        out.append(("OK", call(b"", timeout=timeout, metadata=metadata).decode()))
                    except grpc.RpcError as exc:
                        out.append((exc.code().name, exc.details() or ""))
            return out

        return await asyncio.to_thread(run)


@pytest.fixture
async def bed(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bed]:
    apps = {"web": App("web"), "canary": App("canary"), "flaky": App("flaky", fail_every=5),
            "bad": App("bad", fail_every=1)}  # fmt: skip
    for i, app in enumerate(apps.values()):
        app.start(f"127.0.0.{i + 1}")
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
            app.stop()


async def test_a_grpc_split_is_followed(bed: Bed) -> None:
    bed.publish(grpc_route("split", [{"backendRefs": to(("web", 90), ("canary", 10))}]))
    await bed.routes_applied()
    answers = await bed.calls("Who", 1000)
    assert {code for code, _ in answers} == {"OK"}
    seen = Counter(body.split(":")[0] for _, body in answers)
    assert 850 <= seen["web"] <= 950, seen  # 90% within 5 points
    metrics = bed.metrics()
    labels = ('parent_namespace="shop",parent_name="web",parent_port="80",route_kind="GRPCRoute",'
              'route_namespace="shop",route_name="split"')  # fmt: skip
    assert (f'outbound_grpc_route_backend_requests_total{{{labels},backend_namespace="shop",'
            f'backend_name="canary",backend_port="80"}} {seen["canary"]}') in metrics  # fmt: skip
    assert f'outbound_grpc_route_request_statuses_total{{{labels},grpc_status="0"}} 1000' in metrics
    assert f"outbound_grpc_route_request_duration_seconds_count{{{labels}}} 1000" in metrics
    assert "outbound_http_route_request_duration_seconds" not in metrics


async def test_method_and_header_matches_pick_the_backend_and_filters_apply(bed: Bed) -> None:
    bed.publish(grpc_route("match", [
        {"matches": [{"method": {"service": SERVICE, "method": "Who"},
                      "headers": [{"name": "x-canary", "value": "yes"}]}],
         "backendRefs": to(("canary", 1)),
         "filters": [{"type": "RequestHeaderModifier",
                      "requestHeaderModifier": {"set": [{"name": "x-route", "value": "c"}]}}]},
        {"matches": [{"method": {"type": "RegularExpression", "service": r"lw\..*",
                                 "method": "Fl.*"}}],
         "backendRefs": to(("flaky", 1))},
        {"matches": [{"method": {"service": SERVICE}}], "backendRefs": to(("web", 1))},
    ]))  # fmt: skip
    await bed.routes_applied()
    assert await bed.calls("Who", 3, metadata=(("x-canary", "yes"),)) == [("OK", "canary:c")] * 3
    assert await bed.calls("Who", 3) == [("OK", "web:-")] * 3
    assert (await bed.calls("Flaky", 1))[0] == ("OK", "flaky")
    code, _ = (await bed.calls("Nope", 1))[0]
    assert code == "UNIMPLEMENTED"  # lw.Echo/Nope: web's grpcio says it has no such method

    bed.publish(grpc_route("only", [{"matches": [{"method": {"service": "other.Svc"}}]}]))
    await bed.routes_applied()
    code, details = (await bed.calls("Who", 1))[0]
    assert (code, details) == ("UNIMPLEMENTED", "no route matches this request")  # the proxy's


async def test_a_deadline_route_answers_deadline_exceeded_in_time_and_cancels(bed: Bed) -> None:
    bed.publish(grpc_route("slow", [{"backendRefs": to(("web", 1))}],
                           **{"timeout.lacewing.io/request": "200ms"}))  # fmt: skip
    await bed.routes_applied()
    await bed.calls("Who", 1)  # the channel's connections are up: time only the deadline
    started = time.monotonic()
    answers = await bed.calls("Slow", 1, timeout=5.0)
    elapsed = time.monotonic() - started
    assert answers[0] == ("DEADLINE_EXCEEDED", "request timed out")
    assert 0.2 <= elapsed <= 0.35, elapsed  # (a new channel each time: its connect counts)
    for _ in range(100):  # the app sees the call cancelled long before its 2 s
        if bed.apps["web"].cancelled:
            break
        await asyncio.sleep(0.01)
    assert bed.apps["web"].cancelled == 1
    # the endpoint is not blamed for being slow: the next calls reach it, and time out again
    assert await bed.calls("Slow", 2) == [("DEADLINE_EXCEEDED", "request timed out")] * 2
    assert 'route_name="slow",grpc_status="4"} 3' in bed.metrics()


async def test_retries_on_unavailable_within_the_budget(bed: Bed) -> None:
    retry = {"retry.lacewing.io/grpc": "unavailable", "retry.lacewing.io/limit": "2"}
    bed.publish(grpc_route("flaky", [{"backendRefs": to(("flaky", 1))}], **retry))
    await bed.routes_applied()
    answers = await bed.calls("Flaky", 500)
    ok = sum(code == "OK" for code, _ in answers)
    assert ok >= 495, Counter(code for code, _ in answers)  # >= 99%
    retries = bed.apps["flaky"].calls["Flaky"] - 500
    assert 0 < retries <= 0.2 * 500 + 100
    assert f'outbound_grpc_route_retry_requests_total{{{_labels("flaky")}}} {retries}' \
        in bed.metrics()  # fmt: skip

    # a backend that always fails: the budget (20% of requests + 10/s over 10 s) caps retries
    bed.publish(grpc_route("bad", [{"backendRefs": to(("bad", 1))}], **retry))
    await bed.routes_applied()
    answers = await bed.calls("Flaky", 400)
    assert {code for code, _ in answers} == {"UNAVAILABLE"}
    sent = bed.apps["bad"].calls["Flaky"]
    assert 400 < sent <= 400 + 0.2 * 400 + 100 + 1, sent
    metrics = bed.metrics()
    assert f"outbound_grpc_route_retry_requests_total{{{_labels('bad')}}} {sent - 400}" in metrics
    overflow = f"outbound_grpc_route_retry_overflow_total{{{_labels('bad')}}} "
    line = next(x for x in metrics.split("\n") if x.startswith(overflow))
    assert int(line.rsplit(" ", 1)[1]) > 0  # the budget said no


async def test_failure_accrual_counts_grpc_status_and_ejects_then_probes_back(bed: Bed) -> None:
    accrual = {"balancer.lacewing.io/failure-accrual": "consecutive",
               "balancer.lacewing.io/failure-accrual-consecutive-max-failures": "3"}  # fmt: skip
    bed.publish(grpc_route("pair", [{"backendRefs": to(("pair", 1))}], **accrual))
    await bed.routes_applied()
    bad, good = bed.apps["bad"], bed.apps["canary"]
    discovery = bed.proxy.sides[1].discovery
    assert isinstance(discovery, OutboundDiscovery)
    pair = "pair.shop.svc.cluster.local:80"
    answers = Counter(code for code, _ in await bed.calls("Flaky", 200))
    failed = bad.calls["Flaky"]  # every call there answered UNAVAILABLE (HTTP 200, grpc 14)
    assert discovery.ejected_backends(pair) == [Addr("127.0.0.4", bad.port)]
    assert 3 <= failed <= 4  # ejected after 3 in a row; a probe more if the backoff ran out
    assert answers == {"UNAVAILABLE": failed, "OK": 200 - failed}
    assert good.calls["Flaky"] == 200 - failed
    bad.fail_every = 0  # it recovers
    await asyncio.sleep(1.55)  # the first backoff: 1 s, up to 1.5 s with its jitter
    again = Counter(code for code, _ in await bed.calls("Flaky", 100))
    assert again == {"OK": 100}
    assert bad.calls["Flaky"] > failed  # the probe reached it and succeeded: back
    assert discovery.ejected_backends(pair) == []


def _labels(route: str) -> str:
    return ('parent_namespace="shop",parent_name="web",parent_port="80",route_kind="GRPCRoute",'
            f'route_namespace="shop",route_name="{route}"')  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "annotations", "wanted"),
    [
        ({"matches": [{"method": {"type": "Exact"}}]}, {}, "needs a service, a method or both"),
        ({"matches": [{"method": {"service": "a/b"}}]}, {}, "is not a gRPC service name"),
        ({"matches": [{"method": {"type": "RegularExpression", "service": "("}}]}, {},
         "invalid regular expression"),
        ({"filters": [{"type": "RequestRedirect", "requestRedirect": {}}]}, {},
         "unknown filter 'RequestRedirect'"),
        ({"backendRefs": to(("web", 0))}, {}, "the weights sum to zero"),
        ({}, {"retry.lacewing.io/grpc": "unavailable,sometimes"}, "'sometimes' is not one of"),
    ],
)  # fmt: skip
def test_an_invalid_grpc_route_has_one_reason(
    rule: dict[str, Any], annotations: dict[str, str], wanted: str
) -> None:
    with pytest.raises(RouteError) as caught:
        parse_route(grpc_route("bad", [rule], **annotations))
    assert caught.value.reason == "UnsupportedValue"
    assert wanted in str(caught.value) and "\n" not in str(caught.value)


def http_route(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    obj = grpc_route(name, rules)
    obj["kind"] = "HTTPRoute"
    return obj


async def h2_get(port: int, path: str) -> tuple[dict[bytes, bytes], bytes]:
    """One plain HTTP/2 GET (prior knowledge) to the proxy: the response head and body."""
    import h2.config
    import h2.connection
    import h2.events

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    conn.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"),
                          (b":authority", b"web.shop"), (b":path", path.encode())],
                      end_stream=True)  # fmt: skip
    writer.write(conn.data_to_send())
    head: dict[bytes, bytes] = {}
    body = b""
    ended = False
    try:
        while not ended:
            data = await asyncio.wait_for(reader.read(65536), 5.0)
            assert data, "the proxy closed the connection"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    head = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    ended = True
            writer.write(conn.data_to_send())
    finally:
        writer.close()
    return head, body


async def test_http_routes_apply_to_http2_requests_and_grpc_calls(bed: Bed) -> None:
    bed.publish(http_route("h2", [
        {"matches": [{"path": {"type": "Exact", "value": f"/{SERVICE}/Who"}}],
         "backendRefs": to(("canary", 1)),
         "filters": [{"type": "RequestHeaderModifier",
                      "requestHeaderModifier": {"set": [{"name": "X-Route", "value": "h"}]}},
                     {"type": "ResponseHeaderModifier",
                      "responseHeaderModifier": {"add": [{"name": "x-served-by", "value": "c"}]}}]},
        {"matches": [{"path": {"type": "Exact", "value": "/old"}}],
         "filters": [{"type": "RequestRedirect",
                      "requestRedirect": {"path": {"type": "ReplaceFullPath",
                                                   "replaceFullPath": "/new"},
                                          "statusCode": 301}}]},
    ]))  # fmt: skip
    await bed.routes_applied()

    def who() -> tuple[bytes, dict[str, str]]:
        with grpc.insecure_channel(bed.target) as channel:
            answer, call = channel.unary_unary(f"/{SERVICE}/Who").with_call(b"", timeout=5)
            return answer, {str(k): str(v) for k, v in call.initial_metadata()}

    answer, metadata = await asyncio.to_thread(who)
    assert (answer, metadata.get("x-served-by")) == (b"canary:h", "c")
    head, body = await h2_get(bed.proxy.bound["outbound"].port, "/old?q=1")
    assert (head[b":status"], head[b"location"]) == (b"301", b"http://web.shop/new?q=1")
    head, body = await h2_get(bed.proxy.bound["outbound"].port, "/elsewhere")
    assert (head[b":status"], body) == (b"404", b"no route matches this request\n")


async def test_a_call_to_a_service_with_no_endpoints_is_unavailable(bed: Bed) -> None:
    empty = Service("web", "shop", VIP.host, (ServicePort(80, 80, "grpc"),), ())
    bed.hub.publish(Directory((empty,), ()))
    discovery = bed.proxy.sides[1].discovery
    assert isinstance(discovery, OutboundDiscovery)
    for _ in range(200):
        if not discovery.endpoints(VIP):
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(1.1)  # past the moment a new connection waits for endpoints
    started = time.monotonic()
    answers = await bed.calls("Hello", 3)
    elapsed = time.monotonic() - started
    assert answers == [("UNAVAILABLE", "service web has no endpoints")] * 3
    assert elapsed < 1.0, elapsed  # fails fast: no wait, no connect to the cluster IP
    assert bed.apps["web"].calls["Hello"] == 0
    line = next(x for x in bed.metrics().split("\n") if x.startswith("response_total{")
                and 'dst_service="web"' in x and 'grpc_status="14"' in x)  # fmt: skip
    assert line.endswith(" 3"), line
