"""HTTP/2 through the proxy's h2 protocols, in memory: streams, balancing, gRPC, endings."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import h2.events
import h2.settings
from h2.errors import ErrorCodes
from tests.unit.proxy.h2.harness import GET, GRPC, App, Net, ok_response
from tests.unit.proxy.promtext import parse

from lacewing.proxy.config import Addr
from lacewing.proxy.h2.hblock import check_request, check_response, check_trailers

A, B, C = Addr("10.1.0.1", 8080), Addr("10.1.0.2", 8080), Addr("10.1.0.3", 8080)


def one_outcome_each(net: Net) -> None:
    outcomes = net.picks.outcomes()
    assert outcomes and all(len(o) == 1 for o in outcomes), outcomes


def responses(net: Net) -> dict[tuple[str, ...], float]:
    out = {}
    for (name, labelset), value in parse("\n".join(net.metrics.render()) + "\n").items():
        labels = dict(labelset)
        if name == "response_total":
            out[(labels["status_code"], labels["classification"],
                 labels.get("grpc_status", "-"))] = value  # fmt: skip
    return out


async def test_a_request_goes_through_and_is_counted_like_http1() -> None:
    app = App(A, ok_response(b"hi"))
    net = Net([app])
    _, wire = net.client()
    net.now = 1.0
    wire.peer.send_headers(1, GET, end_stream=True)
    net.now = 1.0
    await net.settle()
    assert [e.headers for e in wire.of(h2.events.ResponseReceived)] == [[(b":status", b"200")]]
    assert b"".join(e.data for e in wire.of(h2.events.DataReceived)) == b"hi"
    assert wire.of(h2.events.StreamEnded)
    assert app.requests[0].headers[:4] == GET
    assert net.picks.outcomes() == [[("done", True)]]
    assert net.picks.logicals[0].protocol == "h2"
    assert net.picks.logicals[0].authority == "web:8080"
    assert responses(net) == {("200", "success", "-"): 1}
    await net.close()


async def test_streams_of_one_connection_are_balanced_one_by_one_on_reused_connections() -> None:
    apps = [App(addr, ok_response()) for addr in (A, B, C)]
    net = Net(apps)
    _, wire = net.client()
    for sid in range(1, 13, 2):
        wire.peer.send_headers(sid, GET, end_stream=True)
    await net.settle()
    assert [len(app.requests) for app in apps] == [2, 2, 2]
    for sid in range(13, 25, 2):
        wire.peer.send_headers(sid, GET, end_stream=True)
    await net.settle()
    assert [len(app.requests) for app in apps] == [4, 4, 4]
    assert len(wire.of(h2.events.StreamEnded)) == 12
    # one multiplexed connection per endpoint carried all of its streams
    assert sorted(net.connector.connects, key=str) == [A, B, C]
    one_outcome_each(net)
    await net.close()


async def test_a_new_upstream_connection_when_the_endpoint_allows_no_more_streams() -> None:
    app = App(A)  # never answers: streams stay open
    net = Net([app])
    _, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    up = app.wires[0].peer
    up.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    await net.settle()
    for sid in (3, 5, 7):
        wire.peer.send_headers(sid, GET, end_stream=True)
    await net.settle()
    assert len(app.requests) == 4
    assert [len(w.of(h2.events.RequestReceived)) for w in app.wires] == [2, 2]
    await net.close()


async def test_grpc_trailers_are_forwarded_and_grpc_status_classifies() -> None:
    ok = ok_response(b"\0\0\0\0\0", trailers=[(b"grpc-status", b"0")])
    bad = ok_response(b"", trailers=[(b"grpc-status", b"2"), (b"grpc-message", b"boom")])
    app = App(A)
    app.respond = lambda a, ev: (ok if ev.stream_id == 1 else bad)(a, ev)
    net = Net([app])
    _, wire = net.client()
    wire.peer.send_headers(1, GRPC)
    wire.peer.send_data(1, b"\0\0\0\0\0", end_stream=True)
    await net.settle()
    trailers = wire.of(h2.events.TrailersReceived)
    assert [t.headers for t in trailers] == [[(b"grpc-status", b"0")]]
    assert trailers[0].stream_ended is not None
    app.respond = bad
    wire.peer.send_headers(3, GRPC, end_stream=True)
    await net.settle()
    assert wire.of(h2.events.TrailersReceived)[1].headers == [
        (b"grpc-status", b"2"),
        (b"grpc-message", b"boom"),
    ]
    assert responses(net) == {("200", "success", "0"): 1, ("200", "failure", "2"): 1}
    one_outcome_each(net)
    await net.close()


async def test_a_trailers_only_grpc_response_stays_one_headers_frame() -> None:
    def respond(app: App, ev: h2.events.RequestReceived) -> None:
        app.wire_of(ev).peer.send_headers(ev.stream_id, [
            (b":status", b"200"), (b"content-type", b"application/grpc"),
            (b"grpc-status", b"5")], end_stream=True)  # fmt: skip

    net = Net([App(A, respond)])
    _, wire = net.client()
    wire.peer.send_headers(1, GRPC, end_stream=True)
    await net.settle()
    (head,) = wire.of(h2.events.ResponseReceived)
    assert head.stream_ended is not None and (b"grpc-status", b"5") in head.headers
    assert not wire.of(h2.events.DataReceived)
    assert responses(net) == {("200", "failure", "5"): 1}
    await net.close()


async def test_connect_failure_is_a_502_or_grpc_unavailable_and_fails_the_pick() -> None:
    net = Net([])  # nothing listens at the destination
    _, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    wire.peer.send_headers(3, GRPC, end_stream=True)
    await net.settle()
    heads = {e.stream_id: dict(e.headers) for e in wire.of(h2.events.ResponseReceived)}
    assert heads[1][b":status"] == b"502"
    assert heads[3][b":status"] == b"200" and heads[3][b"grpc-status"] == b"14"
    body = b"".join(e.data for e in wire.of(h2.events.DataReceived) if e.stream_id == 1)
    assert b"refused" in body
    assert net.picks.outcomes() == [[("fail",)], [("fail",)]]
    assert responses(net) == {("502", "failure", "-"): 1, ("200", "failure", "14"): 1}
    await net.close()


async def test_rst_stream_from_the_client_reaches_the_endpoint_and_cancels_the_pick() -> None:
    app = App(A)
    net = Net([app])
    _, wire = net.client()
    wire.peer.send_headers(1, GRPC)
    await net.settle()
    wire.peer.reset_stream(1, ErrorCodes.CANCEL)
    await net.settle()
    (reset,) = app.wires[0].of(h2.events.StreamReset)
    assert reset.error_code == ErrorCodes.CANCEL
    assert net.picks.outcomes() == [[("cancel",)]]
    await net.close()


async def test_rst_stream_from_the_endpoint_reaches_the_client() -> None:
    def reset(app: App, ev: h2.events.RequestReceived) -> None:
        app.wire_of(ev).peer.reset_stream(ev.stream_id, ErrorCodes.INTERNAL_ERROR)

    net = Net([App(A, reset)])
    _, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    (got,) = wire.of(h2.events.StreamReset)
    assert got.error_code == ErrorCodes.INTERNAL_ERROR
    assert net.picks.outcomes() == [[("fail",)]]  # the endpoint failed before answering
    await net.close()


async def test_endpoint_lost_after_the_head_resets_the_client_stream() -> None:
    def head_only(app: App, ev: h2.events.RequestReceived) -> None:
        app.wire_of(ev).peer.send_headers(ev.stream_id, [(b":status", b"200")])

    app = App(A, head_only)
    net = Net([app])
    _, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    app.wires[0].transport.close()
    await net.settle()
    (got,) = wire.of(h2.events.StreamReset)
    assert got.error_code == ErrorCodes.INTERNAL_ERROR
    assert net.picks.outcomes() == [[("done", True)]]
    # the next request opens a new connection
    app.respond = ok_response()
    wire.peer.send_headers(3, GET, end_stream=True)
    await net.settle()
    assert len(net.connector.connects) == 2 and len(wire.of(h2.events.StreamEnded)) == 1
    await net.close()


async def test_endpoint_lost_before_the_head_is_a_502() -> None:
    app = App(A)
    net = Net([app])
    _, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    app.wires[0].transport.close()
    await net.settle()
    (head,) = wire.of(h2.events.ResponseReceived)
    assert dict(head.headers)[b":status"] == b"502"
    assert net.picks.outcomes() == [[("fail",)]]
    await net.close()


async def test_client_gone_cancels_every_pick_and_resets_upstream_streams() -> None:
    app = App(A)
    net = Net([app])
    server, wire = net.client()
    for sid in (1, 3, 5):
        wire.peer.send_headers(sid, GET, end_stream=True)
    await net.settle()
    wire.transport.close()
    await net.settle()
    assert len(app.wires[0].of(h2.events.StreamReset)) == 3
    assert net.picks.outcomes() == [[("cancel",)]] * 3
    assert not server.streams
    await net.close()


def test_connection_specific_and_malformed_header_lists_are_refused() -> None:
    ok = [(b":status", b"200"), (b"te", b"trailers"), (b"x-kept", b"1")]
    assert check_response(ok) is None
    for bad in [(b"connection", b"close"), (b"keep-alive", b"5"), (b"te", b"gzip"),
                (b"upgrade", b"h2c"), (b"transfer-encoding", b"chunked"), (b"X-Up", b"1"),
                (b"x-crlf", b"a\r\nb"), (b"x-space", b" a"), (b":path", b"/")]:  # fmt: skip
        assert check_response([*ok, bad]) is not None, bad
    assert check_request(GET) is None
    assert check_request(GET[1:]) == "no :method"
    assert check_request([(b"x-a", b"1"), *GET]) == "pseudo-header after a regular header"
    assert check_trailers([(b"grpc-status", b"0")]) is None
    assert check_trailers([(b":status", b"200")]) is not None


async def test_a_request_with_a_connection_header_is_reset_and_never_sent_on() -> None:
    app = App(A, ok_response())
    net = Net([app])
    _, wire = net.client()
    wire.peer.config.validate_outbound_headers = False  # a client that breaks RFC 9113 8.2.2
    wire.peer.config.normalize_outbound_headers = False
    wire.peer.send_headers(1, [*GET, (b"connection", b"close")], end_stream=True)
    await net.settle()
    assert [(e.stream_id, e.error_code) for e in wire.of(h2.events.StreamReset)] == [
        (1, ErrorCodes.PROTOCOL_ERROR)
    ]
    assert app.requests == [] and net.picks.handles == []
    wire.peer.send_headers(3, GET, end_stream=True)  # the connection goes on
    await net.settle()
    assert [e.stream_id for e in wire.of(h2.events.StreamEnded)] == [3]
    await net.close()


class PathGate:
    """Inbound policy stand-in: requests to /ok (and gRPC's SayHello) are allowed."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, str | None, str, str]] = []

    def request(
        self, port: int, client: str | None, ip: str, method: str, path: str, header: Any = None
    ) -> Any:
        self.asked.append((port, client, method, path))
        allowed = path in ("/ok", "/helloworld.Greeter/SayHello")
        return SimpleNamespace(allowed=allowed, not_found=False, labels=(("srv_name", "web"),))


async def test_inbound_policy_authorizes_every_stream_on_its_own() -> None:
    gate = PathGate()
    app = App(A, ok_response())
    net = Net([app], direction="inbound", gate=gate)
    _, wire = net.client()
    wire.peer.send_headers(1, [*GET[:3], (b":path", b"/ok")], end_stream=True)
    wire.peer.send_headers(3, [*GET[:3], (b":path", b"/secret")], end_stream=True)
    grpc_denied = [*GRPC[:3], (b":path", b"/admin.Admin/Wipe"), *GRPC[4:]]
    wire.peer.send_headers(5, grpc_denied, end_stream=True)
    await net.settle()
    heads = {e.stream_id: dict(e.headers) for e in wire.of(h2.events.ResponseReceived)}
    assert heads[1][b":status"] == b"200"
    assert heads[3][b":status"] == b"403"
    assert heads[5][b":status"] == b"200" and heads[5][b"grpc-status"] == b"7"
    assert [r.stream_id for r in app.requests] == [1]  # denied ones were never sent on
    assert [a[3] for a in gate.asked] == ["/ok", "/secret", "/admin.Admin/Wipe"]
    assert net.picks.outcomes() == [[("done", True)], [("cancel",)], [("cancel",)]]
    text = "\n".join(net.metrics.render())
    assert 'inbound_http_authz_deny_total{target_addr="10.0.0.9:8080",srv_name="web"' in text
    assert responses(net) == {("200", "success", "-"): 1, ("403", "success", "-"): 1,
                              ("200", "failure", "7"): 1}  # fmt: skip
    await net.close()


async def test_the_balancer_is_told_the_endpoints_latency_without_the_connect() -> None:
    app = App(A, ok_response())
    net = Net([app])
    net.connect_s = 0.05  # a TLS handshake, say: paid once by the first stream
    _, wire = net.client()
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    wire.peer.send_headers(3, GET, end_stream=True)
    await net.settle()
    assert [p.outcomes for p in net.picks.handles] == [[("done", True)]] * 2
    assert [p.seconds for p in net.picks.handles] == [[0.0], [0.0]]
    # the client's latency (response_latency_ms) still includes it
    samples = parse("\n".join(net.metrics.render()) + "\n")
    fast = [v for (name, labels), v in samples.items()
            if name == "response_latency_ms_bucket" and dict(labels).get("le") == "10"]  # fmt: skip
    assert fast == [1.0]  # one of the two answers within 10 ms; the first took 50
    await net.close()


async def test_an_answer_before_the_upload_ended_closes_the_stream_on_both_layers() -> None:
    net = Net([])  # no endpoint: the proxy answers 502 while the body is still coming
    server, wire = net.client()
    wire.peer.send_headers(1, [(b":method", b"POST"), *GET[1:]])
    wire.peer.send_data(1, b"part")
    await net.settle()
    assert [dict(e.headers)[b":status"] for e in wire.of(h2.events.ResponseReceived)] == [b"502"]
    assert [(e.stream_id, e.error_code) for e in wire.of(h2.events.StreamReset)] == [
        (1, ErrorCodes.NO_ERROR)  # RFC 9113 8.1: the rest of the request is not wanted
    ]
    assert server.streams == {} and server.conn.streams == {}  # nothing left to count
    await net.close()


async def test_latency_is_time_to_the_first_data_frame_as_linkerd_measures() -> None:
    app = App(A)  # answers by hand below
    net = Net([app])
    _, wire = net.client()
    net.now = 1.0
    wire.peer.send_headers(1, GET, end_stream=True)
    await net.settle()
    up = app.wires[0].peer
    sid = app.requests[0].stream_id
    net.now = 1.1
    up.send_headers(sid, [(b":status", b"200")])
    await net.settle()
    assert responses(net) == {}  # the head alone: not yet
    net.now = 1.6
    up.send_data(sid, b"late body", end_stream=True)
    await net.settle()
    assert b"".join(e.data for e in wire.of(h2.events.DataReceived)) == b"late body"
    assert responses(net) == {("200", "success", "-"): 1}
    m = parse("\n".join(net.metrics.render()) + "\n")
    sums = [v for (name, _), v in m.items() if name == "response_latency_ms_sum"]
    assert [round(v, 6) for v in sums] == [600.0]  # request at 1.0 -> first DATA at 1.6
    await net.close()
