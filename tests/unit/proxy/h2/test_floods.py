"""HTTP/2 floods and streams that never end (RFC 9113 10.5, CVE-2019-9512/9515/9518,
CVE-2024-27316): each gets its error code, costs bounded memory, and other clients are served."""

from __future__ import annotations

import h2.events
import h2.settings
from h2.errors import ErrorCodes
from tests.unit.proxy.h2.harness import GET, GRPC, App, Net, ok_response

from lacewing.proxy.config import Addr
from lacewing.proxy.h2.settings import DEFAULT_LIMITS

A = Addr("10.1.0.1", 8080)
LIMIT = DEFAULT_LIMITS.max_control_per_s


def goaway(wire) -> h2.events.ConnectionTerminated:  # type: ignore[no-untyped-def]
    (ev,) = wire.of(h2.events.ConnectionTerminated)
    return ev


async def still_serves(net: Net) -> None:
    _, other = net.client()
    other.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    assert [dict(e.headers)[b":status"] for e in other.of(h2.events.ResponseReceived)] == [b"200"]


def frame(ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
    n = len(payload)
    return n.to_bytes(3, "big") + bytes((ftype, flags)) + sid.to_bytes(4, "big") + payload


async def test_a_settings_flood_gets_enhance_your_calm() -> None:
    net = Net([App(A, ok_response())])
    server, wire = net.client()
    await net.settle()
    for _ in range(LIMIT - 1):  # with the connection's first SETTINGS: the limit, answered
        server.data_received(frame(4, 0, 0, b""))
    await net.settle()
    assert not wire.transport.closed
    assert len(wire.of(h2.events.SettingsAcknowledged)) == LIMIT
    net.now += 1.5  # a new second: the count starts again
    for _ in range(LIMIT + 1):
        server.data_received(frame(4, 0, 0, b""))
    await net.settle()
    assert goaway(wire).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert wire.transport.closed
    assert len(wire.of(h2.events.SettingsAcknowledged)) == 2 * LIMIT  # not one more answer
    await still_serves(net)
    await net.close()


async def test_a_ping_flood_gets_enhance_your_calm() -> None:
    net = Net([App(A, ok_response())])
    server, wire = net.client()
    await net.settle()
    for i in range(LIMIT - 1):  # with the connection's first SETTINGS: the limit, answered
        wire.peer.ping(b"%08d" % i)
    await net.settle()
    assert len(wire.of(h2.events.PingAckReceived)) == LIMIT - 1 and not wire.transport.closed
    net.now += 1.5
    for i in range(LIMIT + 1):
        server.data_received(frame(6, 0, 0, b"%08d" % i))
    await net.settle()
    assert goaway(wire).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert wire.transport.closed
    assert len(wire.of(h2.events.PingAckReceived)) == 2 * LIMIT - 1
    await still_serves(net)
    await net.close()


async def test_a_continuation_flood_gets_enhance_your_calm_before_it_is_buffered() -> None:
    app = App(A, ok_response())
    net = Net([app])
    server, wire = net.client()
    await net.settle()
    server.data_received(frame(1, 0, 1, b""))  # HEADERS without END_HEADERS
    for _ in range(40):  # empty CONTINUATIONs, never END_HEADERS (CVE-2024-27316)
        server.data_received(frame(9, 0, 1, b""))
        if wire.transport.closed:
            break
    await net.settle()
    assert goaway(wire).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert server.conn.buffered == 0 and app.requests == []
    await still_serves(net)
    await net.close()


async def test_a_header_block_spread_over_continuations_beyond_the_limit_is_refused() -> None:
    app = App(A, ok_response())
    net = Net([app])
    server, wire = net.client()
    await net.settle()
    chunk = b"\x00" * 16384  # not even valid HPACK: refused for its size before decoding
    server.data_received(frame(1, 0, 1, chunk))
    for _ in range(4):
        server.data_received(frame(9, 0, 1, chunk))
    await net.settle()
    assert goaway(wire).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert app.requests == []
    await still_serves(net)
    await net.close()


async def test_a_headers_flood_on_one_stream_is_a_stream_error() -> None:
    app = App(A)  # never answers
    net = Net([app])
    server, wire = net.client()
    wire.peer.send_headers(1, GET)
    await net.settle()
    # HEADERS again without END_STREAM (`:method GET`, static table): not trailers; the
    # stream is reset, nothing more
    server.data_received(frame(1, 0x4, 1, b"\x82"))
    await net.settle()
    assert [(e.stream_id, e.error_code) for e in wire.of(h2.events.StreamReset)] == [
        (1, ErrorCodes.PROTOCOL_ERROR)
    ]
    assert not wire.transport.closed
    assert [e.error_code for e in app.wires[0].of(h2.events.StreamReset)] == [
        ErrorCodes.PROTOCOL_ERROR
    ]
    app.respond = ok_response()
    wire.peer.send_headers(3, GET, end_stream=True)  # the connection goes on
    await net.settle()
    assert [e.stream_id for e in wire.of(h2.events.StreamEnded)] == [3]
    await net.close()


async def sweep_past_idle(net: Net, server) -> None:  # type: ignore[no-untyped-def]
    server.sweep_idle()  # what moved since the last sweep is forgiven once
    net.now += DEFAULT_LIMITS.stream_idle_s
    server.sweep_idle()
    await net.settle()


async def test_a_stream_the_endpoint_never_answers_times_out_with_504() -> None:
    app = App(A)  # never answers
    net = Net([app])
    server, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    wire.peer.send_headers(3, GRPC, end_stream=True)
    await net.settle()
    server.sweep_idle()
    net.now += DEFAULT_LIMITS.stream_idle_s / 2
    server.sweep_idle()  # not yet
    await net.settle()
    assert not wire.of(h2.events.ResponseReceived)
    net.now += DEFAULT_LIMITS.stream_idle_s / 2
    server.sweep_idle()
    await net.settle()
    heads = {e.stream_id: dict(e.headers) for e in wire.of(h2.events.ResponseReceived)}
    assert heads[1][b":status"] == b"504"
    assert heads[3][b"grpc-status"] == b"4"  # DEADLINE_EXCEEDED
    assert sorted(e.stream_id for e in wire.of(h2.events.StreamEnded)) == [1, 3]
    assert [e.error_code for e in app.wires[0].of(h2.events.StreamReset)] == [ErrorCodes.CANCEL] * 2
    assert net.picks.outcomes() == [[("fail",)], [("fail",)]]
    assert server.streams == {} and not wire.transport.closed
    await net.close()


async def test_a_zero_window_held_open_is_reset_and_its_buffer_let_go() -> None:
    app = App(A)
    net = Net([app])
    server, wire = net.client()
    wire.peer.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    up = app.wires[0].peer
    sid = app.requests[0].stream_id
    up.send_headers(sid, [(b":status", b"200")])
    for _ in range(4):  # the client's window is 0: the proxy holds it
        up.send_data(sid, b"x" * 15000)
    await net.settle()
    assert wire.of(h2.events.ResponseReceived) and not wire.of(h2.events.DataReceived)
    (ex,) = server.streams.values()
    assert sum(len(item[0]) for item in ex.to_down) == 60000  # bounded by the window granted
    await sweep_past_idle(net, server)
    assert [(e.stream_id, e.error_code) for e in wire.of(h2.events.StreamReset)] == [
        (1, ErrorCodes.CANCEL)
    ]
    assert [e.error_code for e in app.wires[0].of(h2.events.StreamReset)] == [ErrorCodes.CANCEL]
    assert server.streams == {} and ex.to_down == type(ex.to_down)()
    assert net.picks.outcomes() == [[("done", True)]]
    await net.close()


async def test_a_stream_that_keeps_moving_is_not_timed_out() -> None:
    app = App(A)
    net = Net([app])
    server, wire = net.client()
    wire.peer.send_headers(1, [(b":method", b"POST"), *GET[1:]])
    await net.settle()
    for _ in range(3):  # a frame every half period: alive
        wire.peer.send_data(1, b"tick")
        await net.settle()
        server.sweep_idle()
        net.now += DEFAULT_LIMITS.stream_idle_s / 2
    assert not wire.of(h2.events.StreamReset) and not wire.of(h2.events.ResponseReceived)
    assert len(server.streams) == 1
    await net.close()
