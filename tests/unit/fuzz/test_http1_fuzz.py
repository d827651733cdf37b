"""Fuzzing the HTTP/1 codec: bytes from a client, and bytes from an endpoint, in any pieces.

Requests are built from valid parts and then mutated (bytes replaced, inserted, dropped), so
most inputs get far into the parser; they arrive split at random points. Properties, on the
in-memory transports (no sockets):
- nothing raises out of the protocol callbacks, and no task the proxy starts dies of an error
  (a second upstream connection is refused at once: no socket is ever opened);
- the client only ever receives HTTP/1.1 responses (the endpoint's or the proxy's own);
- what the proxy sends the endpoint is valid HTTP/1, and every request in it has a request
  target that appears in what the client sent (no request is made up or smuggled in).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httptools
from hypothesis import example, given
from hypothesis import strategies as st

from lacewing.proxy.config import Addr, load
from lacewing.proxy.http1.server import Http1Server
from lacewing.proxy.http1.upstream import UpstreamConn
from lacewing.proxy.metrics import ProxyMetrics
from lacewing.proxy.server import build_sides
from lacewing.proxy.side import Side
from lacewing.proxy.transport import ConnectRefused
from lacewing.proxy.transport.fake import FakeTransport

EP = Addr("127.0.0.1", 8080)
METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS"]
HEADERS = [
    b"Host: app",
    b"Content-Length: 3",
    b"Content-Length: 0",
    b"Transfer-Encoding: chunked",
    b"Connection: close",
    b"Connection: keep-alive, x-hop",
    b"X-Hop: 1",
    b"Expect: 100-continue",
    b"Upgrade: websocket",
    b"Keep-Alive: 5",
    b"X-Any: \x00\x7f\xff",
]
BODIES = [b"", b"abc", b"3\r\nabc\r\n0\r\n\r\n", b"zz\r\n", b"0\r\n\r\n"]


@st.composite
def request_bytes(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        method = draw(st.sampled_from(METHODS))
        target = b"/" + draw(st.binary(max_size=8)).replace(b" ", b"").replace(b"\r", b"")
        version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9.9"]))
        headers = draw(st.lists(st.sampled_from(HEADERS), max_size=5))
        body = draw(st.sampled_from(BODIES))
        sep = draw(st.sampled_from([b"\r\n", b"\n"]))
        parts.append(method + b" " + target + b" " + version + sep + sep.join(headers)
                     + sep + sep + body)  # fmt: skip
    raw = bytearray(b"".join(parts))
    for _ in range(draw(st.integers(0, 3))):  # mutations
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if op == "replace":
            raw[at] = byte
        elif op == "insert":
            raw.insert(at, byte)
        else:
            del raw[at]
    return bytes(raw)


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts}) if data else []
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return [p for p in out if p]


class _Refusing:
    """A connector with no network: the pooled connection is the only way to the endpoint."""

    def labels_for(self, addr: Addr) -> None:
        return None

    async def connect(self, addr: Addr, factory: Callable[[], object]) -> object:
        raise ConnectRefused(f"connecting to {addr}: no network in this test")


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _wire() -> tuple[Side, Http1Server, FakeTransport, UpstreamConn, FakeTransport]:
    refusing: Any = _Refusing()
    _, side = build_sides(load({}), ProxyMetrics(), refusing, clock=lambda: 1.0)
    server = Http1Server(side, EP, side.metrics.tcp_stats("outbound", "src", str(EP), side.tls))
    down = FakeTransport(server)
    server.adopt(down, b"")
    up = UpstreamConn(EP, side.metrics.tcp_stats("outbound", "dst", str(EP), side.tls), side.pool)
    upt = FakeTransport(up)
    up.connection_made(upt)
    side.pool.put(up)
    return side, server, down, up, upt


Wired = tuple[Side, Http1Server, FakeTransport, UpstreamConn, FakeTransport]


def _run(drive: Callable[[], None], wired: list[Wired]) -> None:
    """Run `drive` inside an event loop, let the tasks it started finish, fail on errors."""
    errors = _Errors()
    logger = logging.getLogger("lacewing.proxy")
    logger.addHandler(errors)

    async def main() -> None:
        drive()
        for _ in range(5):
            await asyncio.sleep(0)
        for side, *_ in wired:
            await side.tasks.close()

    try:
        asyncio.run(main())
    finally:
        logger.removeHandler(errors)
    assert not errors.records, [r.getMessage() for r in errors.records]


def _targets(data: bytes) -> list[bytes]:
    """The request targets a strict parser finds in `data`; it must parse (if incomplete)."""
    found: list[bytes] = []

    class Sink:
        url = b""

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_message_complete(self) -> None:
            found.append(self.url)
            self.url = b""

    parser = httptools.HttpRequestParser(Sink())
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        pass  # what follows an upgrade is not HTTP
    except httptools.HttpParserError as exc:
        raise AssertionError(f"the proxy sent the endpoint invalid HTTP: {data!r}") from exc
    return found


@given(request_bytes(), st.lists(st.integers(0, 8) | st.integers(0, 10_000), max_size=4))
@example(raw=b"GET /a HTTP/1.1\r\nHost: app\r\n\r\n", cuts=[1])  # found: "G" was lost
# found: a request after an HTTP/1.0 one that ends the connection went to the endpoint
@example(raw=b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\n\r\n", cuts=[])
# found: an HTTP/1.0 keep-alive request lost its keep-alive upstream with its Connection header
@example(
    raw=b"GET / HTTP/1.0\r\nConnection: keep-alive, x-hop\r\n\r\nGET / HTTP/1.1\r\n\r\n", cuts=[]
)
def test_client_bytes_never_crash_the_proxy_or_reach_the_app_as_other_requests(
    raw: bytes, cuts: list[int]
) -> None:
    wired: list[Wired] = []

    def drive() -> None:
        wired.append(_wire())
        _side, server, _down, up, upt = wired[0]
        for piece in _pieces(raw, cuts):
            server.data_received(piece)
            if upt.data() and not up.closed and server.active is not None:
                up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        server.eof_received()

    _run(drive, wired)
    _side, _server, down, _up, upt = wired[0]
    out = down.data()
    assert not out or out.startswith(b"HTTP/1.1 ")
    for target in _targets(upt.data()):
        assert target in raw, (target, raw)


RESPONSE_PARTS = [
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.1 204 No Content\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n",
    b"Content-Length: 2\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"\r\n",
    b"ok",
    b"2\r\nok\r\n0\r\n\r\n",
    b"\x00garbage",
]


@given(
    st.lists(st.sampled_from(RESPONSE_PARTS), min_size=1, max_size=8),
    st.lists(st.integers(0, 8) | st.integers(0, 10_000), max_size=4),
)
@example(parts=[b"HTTP/1.1 204 No Content\r\n", b"\r\n"], cuts=[1])  # found: "H" was lost
def test_endpoint_bytes_never_crash_the_proxy_and_only_responses_reach_the_client(
    parts: list[bytes], cuts: list[int]
) -> None:
    wired: list[Wired] = []

    def drive() -> None:
        wired.append(_wire())
        _side, server, _down, up, _upt = wired[0]
        server.data_received(b"GET /a HTTP/1.1\r\nHost: app\r\n\r\n")
        for piece in _pieces(b"".join(parts), cuts):
            if up.closed:
                break
            up.data_received(piece)
        if not up.closed:
            up.connection_lost(None)

    _run(drive, wired)
    out = wired[0][2].data()
    assert not out or out.startswith((b"HTTP/1.1 ", b"HTTP/1.0 "))
