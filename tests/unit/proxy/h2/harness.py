"""In-memory HTTP/2 test bed for the proxy's h2 protocols: no sockets.

    Client (h2 client conn) --Wire--> H2Server (proxy) ... H2Upstream (proxy) --Wire--> App

A `Wire` joins one proxy protocol on a `FakeTransport` to a test-side `h2` connection:
`step()` moves what the proxy wrote into the test connection (collecting its events) and what
the test connection wants to send into the proxy, but only while the proxy is reading from
that transport (`FakeTransport.reading`), so paused reading holds bytes back as a socket
would. `drain` decides whether the proxy's writes leave its transport buffer (False: a socket
whose peer is not reading; the transport's high-water mark then pauses the proxy's writing).

`Net.settle()` steps every wire and yields to the loop until nothing moves. `FakeConnector`
opens upstream connections to `App`s (or refuses them); `Picks` stands in for the balancer,
recording each handle's outcomes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from lacewing.proxy.balance import Balancer
from lacewing.proxy.config import Addr, load
from lacewing.proxy.h2.server import H2Server
from lacewing.proxy.metrics import ProxyMetrics
from lacewing.proxy.side import Side
from lacewing.proxy.targets import Endpoint, Logical
from lacewing.proxy.transport import ConnectRefused
from lacewing.proxy.transport.fake import FakeTransport

DST = Addr("10.0.0.9", 8080)
GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"web:8080"),
       (b":path", b"/")]  # fmt: skip
GRPC = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"greeter:50051"),
        (b":path", b"/helloworld.Greeter/SayHello"), (b"content-type", b"application/grpc"),
        (b"te", b"trailers")]  # fmt: skip


def h2conn(client: bool) -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=client, header_encoding=None)
    )
    conn.initiate_connection()
    return conn


class Wire:
    def __init__(self, proto: Any, peer: h2.connection.H2Connection, high_water: int = 1 << 30,
                 preface: bool = True) -> None:  # fmt: skip
        self.proto = proto
        self.peer = peer
        self.transport = FakeTransport(proto, high_water)
        self.events: list[h2.events.Event] = []
        self.drain = True
        self.sent_to_peer = 0  # bytes the proxy wrote that the peer has read
        self.held = b""  # bytes for the proxy while it is not reading
        self.errors: list[Exception] = []
        self.seen = 0  # events the App has looked at

    def step(self) -> bool:
        moved = False
        t = self.transport
        if self.drain and t.written:
            data = b"".join(t.written)
            t.written.clear()
            t.drain()
            self.sent_to_peer += len(data)
            try:
                self.events += self.peer.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                self.errors.append(exc)
            moved = True
        out = self.peer.data_to_send()
        if out:
            self.held += out
        if self.held and t.reading and not t.closed:
            data, self.held = self.held, b""
            self.proto.data_received(data)
            moved = True
        return moved

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@dataclass
class App:
    """A test endpoint: an h2 server answering each request with `respond(app, event)`."""

    addr: Addr
    respond: Callable[[App, h2.events.RequestReceived], None] | None = None
    wires: list[Wire] = field(default_factory=list)
    requests: list[h2.events.RequestReceived] = field(default_factory=list)

    def react(self) -> None:
        for wire in self.wires:
            fresh, wire.seen = wire.events[wire.seen :], len(wire.events)
            for ev in fresh:
                if isinstance(ev, h2.events.RequestReceived):
                    self.requests.append(ev)
                    if self.respond is not None:
                        self.respond(self, ev)

    def wire_of(self, ev: h2.events.Event) -> Wire:
        for wire in self.wires:
            if any(e is ev for e in wire.events):
                return wire
        raise AssertionError("event of no wire")


def ok_response(body: bytes = b"hello", trailers: list[tuple[bytes, bytes]] | None = None
                ) -> Callable[[App, h2.events.RequestReceived], None]:  # fmt: skip
    def respond(app: App, ev: h2.events.RequestReceived) -> None:
        wire = app.wire_of(ev)
        conn = wire.peer
        grpc = dict(ev.headers).get(b"content-type", b"").startswith(b"application/grpc")
        headers = [(b":status", b"200")]
        if grpc:
            headers.append((b"content-type", b"application/grpc"))
        conn.send_headers(ev.stream_id, headers)
        conn.send_data(ev.stream_id, body, end_stream=trailers is None)
        if trailers is not None:
            conn.send_headers(ev.stream_id, trailers, end_stream=True)

    return respond


class RecordingPick:
    """A `targets.Pick` whose every call is recorded (and none is ignored)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        # a real ticket is present (the compiled proxy checks its type): every outcome is
        # reported, and recorded here rather than on the ticket
        self.ticket = Balancer[Addr]().begin(endpoint.addr)
        self.outcomes: list[tuple[Any, ...]] = []
        self.seconds: list[float] = []

    def done(self, ok: bool, seconds: float) -> None:
        self.outcomes.append(("done", ok))
        self.seconds.append(seconds)

    def fail(self) -> None:
        self.outcomes.append(("fail",))

    def cancel(self) -> None:
        self.outcomes.append(("cancel",))


class Picks:
    """side.pick stand-in: endpoints in turn; every handle kept."""

    def __init__(self, addrs: list[Addr]) -> None:
        self.cycle = itertools.cycle(addrs)
        self.handles: list[RecordingPick] = []
        self.logicals: list[Logical] = []

    def __call__(self, logical: Logical) -> RecordingPick:
        self.logicals.append(logical)
        pick = RecordingPick(Endpoint(next(self.cycle)))
        self.handles.append(pick)
        return pick

    def outcomes(self) -> list[list[tuple[Any, ...]]]:
        return [p.outcomes for p in self.handles]


class FakeConnector:
    def __init__(self, net: Net) -> None:
        self.net = net
        self.connects: list[Addr] = []

    def labels_for(self, addr: Addr) -> None:
        return None

    async def connect(self, addr: Addr, factory: Callable[[], Any]) -> tuple[Any, Any]:
        self.connects.append(addr)
        await asyncio.sleep(0)
        self.net.now += self.net.connect_s  # connecting takes this long
        app = self.net.apps.get(addr)
        if app is None:
            raise ConnectRefused(f"connecting to {addr}: Connection refused")
        proto = factory()
        wire = Wire(proto, h2conn(client=False), high_water=self.net.up_high_water)
        app.wires.append(wire)
        self.net.wires.append(wire)
        proto.connection_made(wire.transport)
        return wire.transport, proto


class Net:
    def __init__(self, apps: list[App], *, clock: Callable[[], float] | None = None,
                 up_high_water: int = 1 << 30, direction: str = "outbound",
                 gate: Any = None) -> None:  # fmt: skip
        self.apps = {app.addr: app for app in apps}
        self.wires: list[Wire] = []
        self.up_high_water = up_high_water
        self.metrics = ProxyMetrics()
        self.connector = FakeConnector(self)
        self.now = 0.0
        self.connect_s = 0.0
        self.side = Side(direction, load({}), self.metrics, self.connector,  # type: ignore[arg-type]
                         resolve=lambda d: d, clock=clock or (lambda: self.now),
                         gate=gate)  # fmt: skip
        self.picks = Picks([app.addr for app in apps] or [DST])
        self.side.pick = self.picks  # type: ignore[method-assign,assignment]

    def client(self, high_water: int = 1 << 30) -> tuple[H2Server, Wire]:
        stats = self.metrics.tcp_stats(self.side.direction, "src", str(DST), self.side.tls)
        stats.opened += 1
        peer = h2conn(client=True)
        server = H2Server(self.side, DST, stats)
        wire = Wire(server, peer, high_water)
        server.adopt(wire.transport, peer.data_to_send())
        self.wires.append(wire)
        return server, wire

    def step(self) -> bool:
        moved = False
        for wire in list(self.wires):
            moved = wire.step() or moved
        for app in self.apps.values():
            app.react()
        return moved

    async def settle(self, rounds: int = 200) -> None:
        for _ in range(rounds):
            moved = self.step()
            await asyncio.sleep(0)
            if not moved and not self.step():
                await asyncio.sleep(0)
                if not self.step():
                    return
        raise AssertionError("the network never settled")

    async def close(self) -> None:
        await self.side.tasks.close()
