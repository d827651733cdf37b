"""HTTP/2 flow control and backpressure through the proxy, in memory, both directions."""

from __future__ import annotations

import asyncio

import h2.events
from tests.unit.proxy.h2.harness import GET, App, Net, ok_response

from lacewing.proxy.config import Addr
from lacewing.proxy.h2.settings import DEFAULT_LIMITS

A = Addr("10.1.0.1", 8080)
POST = [(b":method", b"POST"), *GET[1:]]
MIB = 1024 * 1024


def queued(net: Net, attr: str) -> int:
    server = next(w.proto for w in net.wires if w.proto.__class__.__name__ == "H2Server")
    return sum(len(item[0]) for ex in server.streams.values() for item in getattr(ex, attr))


def big_response(size: int):  # type: ignore[no-untyped-def]
    def respond(app: App, ev: h2.events.RequestReceived) -> None:
        conn = app.wire_of(ev).peer
        conn.send_headers(ev.stream_id, [(b":status", b"200")])
        app.pending = (conn, ev.stream_id, b"x" * size)  # type: ignore[attr-defined]
        push(app)

    return respond


def push(app: App) -> int:
    """Send as much of the pending body as the proxy's window allows; returns bytes left."""
    conn, sid, body = app.pending  # type: ignore[attr-defined]
    while body:
        n = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, len(body))
        if n <= 0:
            break
        conn.send_data(sid, body[:n], end_stream=n == len(body))
        body = body[n:]
    app.pending = (conn, sid, body)  # type: ignore[attr-defined]
    return len(body)


async def test_a_slow_client_holds_the_endpoint_back_with_bounded_buffering() -> None:
    app = App(A, big_response(4 * MIB))
    net = Net([app])
    _, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    # the client never acknowledges: it gets its 64 KiB window, the proxy holds at most the
    # window it grants the endpoint, and the endpoint is stopped by its window
    got = sum(len(e.data) for e in wire.of(h2.events.DataReceived))
    assert got == 65535
    assert queued(net, "to_down") <= DEFAULT_LIMITS.stream_window
    left = push(app)
    assert left >= 4 * MIB - 65535 - DEFAULT_LIMITS.stream_window
    # the client reads: acknowledgements reopen every window end to end
    for _ in range(200):
        acked = sum(e.flow_controlled_length for e in wire.of(h2.events.DataReceived))
        new = acked - getattr(wire, "acked", 0)
        if new:
            wire.peer.acknowledge_received_data(new, 1)
            wire.acked = acked  # type: ignore[attr-defined]
        push(app)
        await net.settle()
        if wire.of(h2.events.StreamEnded):
            break
        assert queued(net, "to_down") <= DEFAULT_LIMITS.stream_window
    assert sum(len(e.data) for e in wire.of(h2.events.DataReceived)) == 4 * MIB
    assert net.picks.outcomes() == [[("done", True)]]
    await net.close()


async def test_a_slow_endpoint_holds_the_client_upload_back() -> None:
    app = App(A)
    net = Net([app])
    _, wire = net.client()
    client = wire.peer
    client.send_headers(1, POST)
    sent = 0
    for _ in range(100):
        n = min(client.local_flow_control_window(1), client.max_outbound_frame_size)
        if n <= 0:
            break
        client.send_data(1, b"u" * n)
        sent += n
        await net.settle()
    upstream = app.wires[0]
    got = sum(len(e.data) for e in upstream.of(h2.events.DataReceived))
    assert got == 65535  # the endpoint's default window, never acknowledged
    # the client was stopped by the window the proxy grants, the proxy holds the rest
    assert sent <= DEFAULT_LIMITS.stream_window
    assert queued(net, "to_up") == sent - got
    acked = 0
    for _ in range(10):  # the endpoint reads: each acknowledgement lets one window through
        total = sum(len(e.data) for e in upstream.of(h2.events.DataReceived))
        if total > acked:
            upstream.peer.acknowledge_received_data(total - acked, 1)
            acked = total
        await net.settle()
    assert sum(len(e.data) for e in upstream.of(h2.events.DataReceived)) == sent
    await net.close()


async def test_an_upstream_that_cannot_write_stops_reading_from_its_clients() -> None:
    app = App(A)
    net = Net([app], up_high_water=1000)
    _, wire = net.client()
    wire.peer.send_headers(1, POST)
    await net.settle()
    upstream = app.wires[0]
    upstream.drain = False  # the endpoint's socket stops taking bytes
    wire.peer.send_data(1, b"x" * 5000)
    await net.settle()
    assert not wire.transport.reading
    held = upstream.transport.buffered
    wire.peer.send_data(1, b"y" * 5000)
    await net.settle()
    assert upstream.transport.buffered == held  # nothing more was written or read
    upstream.drain = True
    await net.settle()
    assert wire.transport.reading
    got = sum(len(e.data) for e in upstream.of(h2.events.DataReceived))
    assert got == 10000
    await net.close()


async def test_a_client_that_cannot_take_more_gets_no_more_data_written() -> None:
    app = App(A, big_response(1 * MIB))
    net = Net([app])
    _, wire = net.client(high_water=20000)
    wire.peer.update_settings({4: 1 * MIB})  # a big stream window: only the socket limits
    wire.peer.increment_flow_control_window(1 * MIB)
    await net.settle()
    wire.drain = False
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    # what one batch from the endpoint brought (at most the window we grant it) was written;
    # after the transport paused, nothing more is, and the endpoint's window stays closed
    held = wire.transport.buffered
    assert held <= 20000 + DEFAULT_LIMITS.stream_window + 1000
    assert push(app) > 0
    await net.settle()
    assert push(app) > 0
    await net.settle()
    assert wire.transport.buffered == held
    assert queued(net, "to_down") <= DEFAULT_LIMITS.stream_window
    wire.drain = True
    for _ in range(50):
        push(app)
        await net.settle()
    assert wire.of(h2.events.StreamEnded)
    assert sum(len(e.data) for e in wire.of(h2.events.DataReceived)) == 1 * MIB
    await net.close()


async def test_data_dropped_by_a_reset_gives_the_connection_window_back() -> None:
    app = App(A)
    net = Net([app])
    _, wire = net.client()
    client = wire.peer
    for sid in range(1, 40, 2):  # 20 uploads, each stuck at the endpoint's window
        client.send_headers(sid, POST)
        client.send_data(sid, b"z" * 16000)
        await net.settle()
        client.send_data(sid, b"z" * 16000)
        client.reset_stream(sid)
        await net.settle()
    # 20 x 32000 bytes passed through the proxy's 1 MiB connection window and were dropped
    # or sent: the window came back every time, so the client can still send
    assert client.outbound_flow_control_window > 512 * 1024
    await net.close()


async def test_an_upload_cut_short_by_a_failed_connect_gives_the_window_back() -> None:
    net = Net([])  # nothing listens: every stream is answered 502 by the proxy
    _, wire = net.client()
    client = wire.peer
    for sid in range(1, 80, 2):  # 40 uploads of 32000 bytes: 1.2 MiB > the connection window
        client.send_headers(sid, POST)
        client.send_data(sid, b"z" * 16000)
        client.send_data(sid, b"z" * 16000)
        await net.settle()
    assert len(wire.of(h2.events.ResponseReceived)) == 40
    assert client.outbound_flow_control_window > 512 * 1024
    await net.close()


async def test_client_connections_read_in_one_poll_share_one_write_upstream() -> None:
    """What a read makes the proxy send goes out once the loop's other callbacks have run
    (`Flusher.flush_soon`): two client connections read in one iteration of the event loop
    cost their shared upstream connection one write with both requests, not one write each."""
    app = App(A, ok_response(b"ok"))
    net = Net([app])
    clients = [net.client()[1] for _ in range(2)]
    clients[0].peer.send_headers(1, GET, end_stream=True)
    await net.settle()  # the upstream connection is open and idle now
    (up,) = app.wires
    writes = len(up.transport.written)
    for wire in clients:  # both reads in the same iteration, as after one poll
        wire.peer.send_headers(3 if wire is clients[0] else 1, GET, end_stream=True)
        wire.proto.data_received(wire.peer.data_to_send())
    assert len(up.transport.written) == writes  # nothing yet: the loop has not come round
    await asyncio.sleep(0)
    assert len(up.transport.written) == writes + 1
    await net.settle()
    assert len(app.requests) == 3
    assert all(len(w.of(h2.events.StreamEnded)) == len(w.of(h2.events.ResponseReceived))
               for w in clients)  # fmt: skip
    assert sum(len(w.of(h2.events.StreamEnded)) for w in clients) == 3
    await net.close()
