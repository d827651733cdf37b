"""HTTP/2 limits, bad input and shutdown: GOAWAY with the right code, other clients unharmed."""

from __future__ import annotations

import h2.events
import h2.settings
from h2.connection import ConnectionState
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame
from tests.unit.proxy.h2.harness import GET, App, Net, Picks, ok_response

from lacewing.proxy.config import Addr
from lacewing.proxy.h2.pool import pool_of
from lacewing.proxy.h2.settings import DEFAULT_LIMITS

A = Addr("10.1.0.1", 8080)
B = Addr("10.1.0.2", 8080)


def goaway(wire) -> h2.events.ConnectionTerminated:  # type: ignore[no-untyped-def]
    (ev,) = wire.of(h2.events.ConnectionTerminated)
    return ev


async def still_serves(net: Net) -> None:
    _, other = net.client()
    other.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    assert [dict(e.headers)[b":status"] for e in other.of(h2.events.ResponseReceived)] == [b"200"]


async def test_malformed_frames_get_goaway_protocol_error_and_others_are_served() -> None:
    app = App(A)
    net = Net([app])
    server, wire = net.client()
    wire.peer.send_headers(1, [(b":method", b"POST"), *GET[1:]])
    await net.settle()
    # a DATA frame on stream 0 is a connection error (RFC 9113 6.1)
    server.data_received(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
    await net.settle()
    assert goaway(wire).error_code == ErrorCodes.PROTOCOL_ERROR
    assert wire.transport.closed
    assert net.picks.outcomes() == [[("cancel",)]]
    assert [e.error_code for e in app.wires[0].of(h2.events.StreamReset)] == [ErrorCodes.CANCEL]
    app.respond = ok_response()
    await still_serves(net)
    await net.close()


async def test_an_overlong_frame_is_refused_from_its_header_before_it_is_buffered() -> None:
    net = Net([App(A, ok_response())])
    server, wire = net.client()
    await net.settle()
    server.data_received(b"\x00\x40")  # part of a frame header: nothing to say yet
    assert not wire.transport.closed
    # the rest of a header announcing 16 KiB + 1, over our SETTINGS_MAX_FRAME_SIZE
    server.data_received(b"\x01\x00\x00\x00\x00\x00\x01" + b"x" * 100)
    await net.settle()
    assert goaway(wire).error_code == ErrorCodes.FRAME_SIZE_ERROR
    assert wire.transport.closed
    assert server.conn.buffered == 0
    await still_serves(net)
    await net.close()


async def test_more_concurrent_streams_than_allowed_is_refused_with_goaway() -> None:
    app = App(A)  # answers nothing: every stream stays open
    net = Net([app])
    _, wire = net.client()
    await net.settle()
    limit = DEFAULT_LIMITS.max_concurrent_streams
    assert wire.peer.remote_settings.max_concurrent_streams == limit
    wire.peer.remote_settings = h2.settings.Settings(client=False)  # a client that ignores it
    for i in range(limit):
        wire.peer.send_headers(1 + 2 * i, GET, end_stream=True)
    await net.settle()
    assert len(app.requests) == limit and not wire.of(h2.events.ConnectionTerminated)
    wire.peer.send_headers(1 + 2 * limit, GET, end_stream=True)
    await net.settle()
    assert goaway(wire).error_code == ErrorCodes.PROTOCOL_ERROR
    assert len(app.requests) == limit
    outcomes = net.picks.outcomes()
    assert len(outcomes) == limit and all(o == [("cancel",)] for o in outcomes)
    app.respond = ok_response()
    await still_serves(net)
    await net.close()


async def test_a_header_list_over_the_limit_is_refused_with_goaway() -> None:
    app = App(A, ok_response())
    net = Net([app])
    _, wire = net.client()
    await net.settle()
    big = [(b"x-big-%d" % i, b"v" * 1000) for i in range(80)]  # ~80 KiB > 64 KiB
    wire.peer.send_headers(1, [*GET, *big], end_stream=True)
    await net.settle()
    assert goaway(wire).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert app.requests == [] and net.picks.handles == []
    await still_serves(net)
    await net.close()


async def test_drain_sends_goaway_finishes_streams_in_flight_and_refuses_new_ones() -> None:
    app = App(A)
    net = Net([app])
    server, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    wire.peer.send_headers(3, GET, end_stream=True)
    await net.settle()
    server.drain()
    await net.settle()
    ev = goaway(wire)
    assert (ev.error_code, ev.last_stream_id) == (ErrorCodes.NO_ERROR, 3)
    wire.peer.state_machine.state = ConnectionState.CLIENT_OPEN  # a graceful GOAWAY: go on
    wire.peer.send_headers(5, GET, end_stream=True)  # crossed the GOAWAY: refused
    await net.settle()
    assert [(e.stream_id, e.error_code) for e in wire.of(h2.events.StreamReset)] == [
        (5, ErrorCodes.REFUSED_STREAM)
    ]
    assert not wire.transport.closed  # two streams still in flight
    for req in app.requests:
        ok_response()(app, req)
    await net.settle()
    assert sorted(e.stream_id for e in wire.of(h2.events.StreamEnded)) == [1, 3]
    assert wire.transport.closed
    assert net.picks.outcomes() == [[("done", True)]] * 2
    await net.close()


async def test_an_idle_connection_drains_at_once_and_upstreams_close_with_the_pool() -> None:
    app = App(A, ok_response())
    net = Net([app])
    server, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    server.drain()
    await net.settle()
    assert goaway(wire).error_code == ErrorCodes.NO_ERROR and wire.transport.closed
    assert pool_of(net.side).count() == 1
    pool_of(net.side).close_all()
    await net.settle()
    assert app.wires[0].transport.closed and pool_of(net.side).count() == 0
    await net.close()


def two_endpoints(order: list[Addr]) -> tuple[Net, App, App]:
    a, b = App(A), App(B)
    net = Net([a, b])
    net.picks = Picks(order)
    net.side.pick = net.picks  # type: ignore[method-assign,assignment]
    return net, a, b


async def test_streams_past_an_endpoint_goaway_are_retried_on_another_endpoint() -> None:
    net, a, b = two_endpoints([A, A, B])
    _, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    wire.peer.send_headers(3, GET, end_stream=True)
    await net.settle()
    up = a.wires[0]
    # the endpoint shuts down gracefully: it serves stream 1, not stream 3
    frame = GoAwayFrame(0)
    frame.last_stream_id, frame.error_code = 1, 0
    up.peer._data_to_send += frame.serialize()
    await net.settle()
    # stream 3 was never processed there: sent again, to B
    assert not wire.of(h2.events.StreamReset)
    assert [len(a.requests), len(b.requests)] == [2, 1]
    ok_response()(a, a.requests[0])
    ok_response()(b, b.requests[0])
    await net.settle()
    assert sorted(e.stream_id for e in wire.of(h2.events.StreamEnded)) == [1, 3]
    assert up.transport.closed  # its last stream ended
    a.respond = ok_response()
    wire.peer.send_headers(5, GET, end_stream=True)
    await net.settle()
    assert len(a.wires) == 2  # a new connection: the first one saw GOAWAY
    assert sorted(e.stream_id for e in wire.of(h2.events.StreamEnded)) == [1, 3, 5]
    assert net.picks.outcomes() == [
        [("done", True)],
        [("cancel",)],  # refused: says nothing about the endpoint
        [("done", True)],  # its retry, on B
        [("done", True)],
    ]
    await net.close()


def refuse(app: App, ev: h2.events.RequestReceived) -> None:
    app.wire_of(ev).peer.reset_stream(ev.stream_id, ErrorCodes.REFUSED_STREAM)


async def test_refused_stream_is_retried_once_on_another_endpoint() -> None:
    net, a, b = two_endpoints([A, B])
    a.respond, b.respond = refuse, ok_response()
    _, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    assert [len(a.requests), len(b.requests)] == [1, 1]
    assert [e.stream_id for e in wire.of(h2.events.StreamEnded)] == [1]
    assert not wire.of(h2.events.StreamReset)
    assert net.picks.outcomes() == [[("cancel",)], [("done", True)]]
    # refused again on the retry: the client gets REFUSED_STREAM (it may retry itself)
    b.respond = refuse
    wire.peer.send_headers(3, GET, end_stream=True)
    await net.settle()
    assert [(e.stream_id, e.error_code) for e in wire.of(h2.events.StreamReset)] == [
        (3, ErrorCodes.REFUSED_STREAM)
    ]
    assert [len(a.requests), len(b.requests)] == [2, 2]
    await net.close()


async def test_refused_stream_is_not_retried_once_request_data_went_on() -> None:
    net, a, b = two_endpoints([A, B])
    _, wire = net.client()
    wire.peer.send_headers(1, [(b":method", b"POST"), *GET[1:]])
    wire.peer.send_data(1, b"part of a body")
    await net.settle()
    refuse(a, a.requests[0])  # after the first DATA was passed on and acknowledged
    await net.settle()
    assert [(e.stream_id, e.error_code) for e in wire.of(h2.events.StreamReset)] == [
        (1, ErrorCodes.REFUSED_STREAM)
    ]
    assert b.requests == [] and net.picks.outcomes() == [[("cancel",)]]
    await net.close()


async def test_idle_connections_are_swept_both_sides() -> None:
    app = App(A, ok_response())
    net = Net([app])
    server, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    pool = pool_of(net.side)
    server.sweep_idle()  # traffic since the last sweep: kept
    pool.sweep()
    await net.settle()
    assert not wire.transport.closed and not app.wires[0].transport.closed
    server.sweep_idle()  # a whole period without a read: GOAWAY and close
    pool.sweep()
    await net.settle()
    assert goaway(wire).error_code == ErrorCodes.NO_ERROR and wire.transport.closed
    assert app.wires[0].transport.closed and pool.count() == 0
    await net.close()


async def test_a_rapid_reset_flood_gets_enhance_your_calm() -> None:
    app = App(A)  # never answers: every reset comes before the answer
    net = Net([app])
    server, wire = net.client()
    limit = server.limits.max_early_resets_per_s
    for i in range(limit):  # up to the limit within one second: served
        wire.peer.send_headers(1 + 2 * i, GET, end_stream=True)
        wire.peer.reset_stream(1 + 2 * i)
    await net.settle()
    assert not wire.of(h2.events.ConnectionTerminated)
    net.now += 1.5  # a new second: the count starts again
    for i in range(limit, 2 * limit + 1):
        wire.peer.send_headers(1 + 2 * i, GET, end_stream=True)
        wire.peer.reset_stream(1 + 2 * i)
    await net.settle()
    assert goaway(wire).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert wire.transport.closed
    outcomes = net.picks.outcomes()
    assert all(o == [("cancel",)] for o in outcomes) and len(outcomes) == 2 * limit + 1
    app.respond = ok_response()
    await still_serves(net)
    await net.close()
