"""Http1Server and UpstreamConn driven by in-memory transports: no sockets, no event loop
turns, so the exact bytes on each side can be asserted."""

from __future__ import annotations

import pytest

from lacewing.proxy.config import Addr, load
from lacewing.proxy.http1.server import Http1Server
from lacewing.proxy.http1.upstream import UpstreamConn
from lacewing.proxy.metrics import ProxyMetrics
from lacewing.proxy.server import build_sides
from lacewing.proxy.side import Side
from lacewing.proxy.transport.fake import FakeTransport

EP = Addr("127.0.0.1", 8080)


def _wire(
    max_header_bytes: int = 65536,
) -> tuple[Side, Http1Server, FakeTransport, UpstreamConn, FakeTransport]:
    env = {"LACEWING_PROXY_MAX_HEADER_BYTES": str(max_header_bytes)}
    _, side = build_sides(load(env), ProxyMetrics(), clock=lambda: 1.0)
    server = Http1Server(side, EP, side.metrics.tcp_stats("outbound", "src", str(EP), side.tls))
    down = FakeTransport(server, high_water=100)
    server.adopt(down, b"")
    up = UpstreamConn(EP, side.metrics.tcp_stats("outbound", "dst", str(EP), side.tls), side.pool)
    upt = FakeTransport(up)
    up.connection_made(upt)
    side.pool.put(up)
    return side, server, down, up, upt


def test_request_head_is_forwarded_byte_for_byte_and_response_comes_back() -> None:
    side, server, down, up, upt = _wire()
    request = b"GET /a HTTP/1.1\r\nHost: web\r\nX-Case: KeEp\r\n\r\n"
    server.data_received(request)
    assert upt.data() == request
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Y: z\r\n\r\nok"
    up.data_received(response)
    assert down.data() == response
    assert side.pool.count() == 1, "the upstream connection goes back to the pool"
    route = side.metrics.routes[("outbound", "web", str(EP), side.tls)]
    assert route.requests == 1 and route.by_status[200].count == 1


def test_pipelined_requests_wait_their_turn_and_reuse_the_connection() -> None:
    _side, server, down, up, upt = _wire()
    server.data_received(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert upt.data() == b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n", "one request at a time"
    assert not down.reading, "reading pauses while a pipelined request waits"
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
    assert upt.data().endswith(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")
    one = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"
    assert down.data() == one + b"1" + one + b"2"
    assert down.reading


def test_hop_by_hop_headers_are_removed_and_connection_close_is_honoured() -> None:
    side, server, down, up, upt = _wire()
    server.data_received(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n"
        b"Keep-Alive: timeout=5\r\nTE: trailers\r\n\r\n"
    )
    sent = upt.data()
    assert sent == b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: timeout=9\r\n\r\n")
    assert down.data() == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    assert down.closed and side.pool.count() == 1


def test_chunked_response_is_rechunked_and_a_slow_client_pauses_the_endpoint() -> None:
    _side, server, down, up, upt = _wire()
    server.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    up.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    up.data_received(b"80\r\n" + b"x" * 128 + b"\r\n")
    assert not upt.reading, "the client's buffer passed its high-water mark"
    down.drain()
    assert upt.reading
    up.data_received(b"0\r\n\r\n")
    assert down.data().endswith(b"80\r\n" + b"x" * 128 + b"\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 300 + b"\r\n\r\n", b"431"),
    ],
)
def test_bad_requests_are_answered_by_the_proxy(request_bytes: bytes, status: bytes) -> None:
    _side, server, down, _up, upt = _wire(max_header_bytes=200)
    server.data_received(request_bytes)
    assert down.data().startswith(b"HTTP/1.1 " + status) and down.closed
    assert upt.data() == b"", "nothing reaches the app"


def test_http10_and_head_are_recognised_from_the_raw_request_line() -> None:
    _side, server, down, up, _upt = _wire()
    server.data_received(b"HEAD /a/long/path?q=1 HTTP/1.0\r\nHost: a\r\n\r\n")
    req = server.active
    assert req is not None and req.http10 and req.is_head and not req.keep_alive
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
    assert down.data() == b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"


def test_header_names_in_odd_case_still_steer_the_exchange() -> None:
    side, server, down, up, upt = _wire()
    server.data_received(b"GET / HTTP/1.1\r\nhOsT: Web\r\nCONNECTION: close\r\n\r\n")
    assert upt.data() == b"GET / HTTP/1.1\r\nhOsT: Web\r\n\r\n", "CONNECTION: close is hop-by-hop"
    up.data_received(
        b"HTTP/1.1 200 OK\r\ntransfer-ENCODING: chunked\r\nConnection: Keep-Alive\r\n\r\n"
    )
    up.data_received(b"2\r\nok\r\n0\r\n\r\n")
    assert down.data() == (
        b"HTTP/1.1 200 OK\r\ntransfer-ENCODING: chunked\r\nConnection: close\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n"
    )
    assert down.closed, "the client asked to close"
    assert ("outbound", "Web", str(EP), side.tls) in side.metrics.routes


def test_connection_keep_alive_alone_leaves_the_response_head_untouched() -> None:
    _side, server, down, up, _upt = _wire()
    server.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\nok"
    up.data_received(response)
    assert down.data() == response and not down.closed


def test_a_malformed_body_after_the_head_went_upstream_gets_400_and_drops_the_upstream() -> None:
    side, server, down, up, upt = _wire()
    server.data_received(b"POST /a HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert upt.data().startswith(b"POST /a HTTP/1.1")  # the head is on its way
    server.data_received(b"zz\r\nhello\r\n")  # not a chunk size
    assert down.data().startswith(b"HTTP/1.1 400 ")  # answered now, not after a timeout
    assert upt.aborted  # the half-sent request cannot finish: that connection is dropped
    assert up not in side.pool.bucket(EP)


async def test_a_head_whose_first_bytes_came_in_an_earlier_read_is_forwarded_whole() -> None:
    # found by tests/unit/fuzz: the head was forwarded from the read its first callback fired
    # in, so a lone first byte ("G", "H") was lost on the way
    _side, server, down, up, upt = _wire()
    server.data_received(b"G")
    server.data_received(b"ET /a HTTP/1.1\r\nHost: web\r\n\r\n")
    assert upt.data() == b"GET /a HTTP/1.1\r\nHost: web\r\n\r\n"
    up.data_received(b"H")
    up.data_received(b"TTP/1.1 204 No Content\r\n\r\n")
    assert down.data() == b"HTTP/1.1 204 No Content\r\n\r\n"
