"""HTTP/2 exchanges reach an open tap too (in memory, the h2 test harness), gRPC with its status."""

from __future__ import annotations

from tests.unit.proxy.h2.harness import GET, GRPC, App, Net, ok_response

from lacewing.proxy.config import Addr
from lacewing.proxy.tap.filter import TapFilter
from lacewing.proxy.tap.hub import Tap, TapHub

A = Addr("10.1.0.1", 8080)


async def test_h2_and_grpc_exchanges_are_tapped_with_method_path_and_grpc_status() -> None:
    ok = ok_response(b"hi")
    bad = ok_response(b"", trailers=[(b"grpc-status", b"2")])
    app = App(A)
    app.respond = lambda a, ev: (ok if ev.stream_id == 1 else bad)(a, ev)
    net = Net([app])
    hub = TapHub(net.metrics.tap, {"pod": "cli-0"})
    tap = Tap(TapFilter(), lambda: None)
    hub.open(tap)
    _, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    wire.peer.send_headers(3, GRPC, end_stream=True)
    await net.settle()
    got = [(e.method, e.path, e.status, e.grpc_status, e.authority) for e in tap.queue]
    assert got == [
        ("GET", "/", 200, None, "web:8080"),
        ("POST", "/helloworld.Greeter/SayHello", 200, 2, "greeter:50051"),
    ], got
    hub.close(tap)
    await net.close()
