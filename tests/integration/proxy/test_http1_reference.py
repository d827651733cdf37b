"""HTTP/1 robustness against a reference: ambiguous and malformed messages, next to HAProxy.

Every case is sent, on a fresh connection, once through HAProxy in HTTP mode and once through
the lacewing proxy, each in front of its own recording backend (a strict llhttp parser that
answers every request it parses). What is compared is what a user would check:

- the backend behind lacewing never receives a request the client did not send (no request
  smuggling: every request line it parses is one the case meant to send);
- where HAProxy refuses a request (an error status and nothing reaches its backend), lacewing
  refuses it too (4xx, or closes) and forwards nothing: the same as HAProxy, or stricter;
- after every case, a plain request through lacewing still gets its 200 (the proxy keeps
  serving).
Responses get the same treatment: the backend sends a malformed or ambiguous response and the
client must see a well-framed answer or the proxy's 502, never bytes of one response read as
the next. Needs HAProxy (Debian package `haproxy`); nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httptools
import pytest
from tests.unit.proxy.sockets.harness import proxy

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = pytest.mark.skipif(
    not Path(HAPROXY).exists(), reason="needs HAProxy as the reference: apt-get install haproxy"
)


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    intended: tuple[str, ...]  # the request targets the client means to send, in order
    http: bool = True  # False: not HTTP at all, so detection relays it as opaque TCP


H = b"Host: app\r\n"
CASES = [
    Case("plain GET", b"GET /a HTTP/1.1\r\n" + H + b"\r\n", ("/a",)),
    Case(
        "two pipelined GETs",
        b"GET /a HTTP/1.1\r\n" + H + b"\r\nGET /b HTTP/1.1\r\n" + H + b"\r\n",
        ("/a", "/b"),
    ),
    Case(
        "CL.TE smuggling",
        b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: 6\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + H + b"\r\n",
        ("/a",),
    ),
    Case(
        "TE.CL smuggling",
        b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
        b"Content-Length: 4\r\n\r\n2b\r\nGET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n\r\n0\r\n\r\n",
        ("/a",),
    ),
    Case(
        "duplicate Content-Length, different",
        b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 30\r\n\r\nabc",
        ("/a",),
    ),
    Case(
        "duplicate Content-Length, equal",
        b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        ("/a",),
    ),
    Case(
        "Content-Length list",
        b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: 3, 30\r\n\r\nabc",
        ("/a",),
    ),
    Case(
        "negative Content-Length",
        b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
        ("/a",),
    ),
    Case(
        "Content-Length with a sign",
        b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc",
        ("/a",),
    ),
    Case("obs-fold header", b"GET /a HTTP/1.1\r\n" + H + b"X-Long: one\r\n two\r\n\r\n", ("/a",)),
    Case("bare LF line endings", b"GET /a HTTP/1.1\n" + b"Host: app\n\n", ("/a",)),
    Case("bare CR in a header value", b"GET /a HTTP/1.1\r\n" + H + b"X-A: b\rc\r\n\r\n", ("/a",)),
    Case("space before colon", b"GET /a HTTP/1.1\r\nHost : app\r\n\r\n", ("/a",)),
    Case("NUL in a header value", b"GET /a HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n", ("/a",)),
    Case(
        "invalid chunk size",
        b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        ("/a",),
    ),
    Case(
        "chunk size overflow",
        b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
        b"fffffffffffffffff1\r\nGET /smuggled HTTP/1.1\r\n\r\n",
        ("/a",),
    ),
    Case(
        "Transfer-Encoding: chunked, identity",
        b"POST /a HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked, identity\r\nContent-Length: 3\r\n\r\nabc",
        ("/a",),
    ),
    Case(
        "Transfer-Encoding: xchunked",
        b"POST /a HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabc",
        ("/a",),
    ),
    Case(
        "chunked on HTTP/1.0",
        b"POST /a HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ("/a",),
    ),
    Case("garbage request line", b"GARBAGE\r\n\r\n", (), http=False),
    Case("HTTP/2 preface-like line", b"GET / HTTP/2.0\r\n" + H + b"\r\n", ("/",)),
]


@dataclass
class Recorder:
    """A backend that parses strictly and answers each request it sees; remembers targets."""

    targets: list[str] = field(default_factory=list)
    response: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    hangup: bool = False  # close the connection after each response
    server: asyncio.Server | None = None
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.handlers):
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        recorder = self
        done: list[str] = []

        class Sink:
            url = b""

            def on_url(self, url: bytes) -> None:
                self.url += url

            def on_message_complete(self) -> None:
                done.append(self.url.decode("latin-1"))
                self.url = b""

        parser = httptools.HttpRequestParser(Sink())
        try:
            while data := await reader.read(65536):
                try:
                    parser.feed_data(data)
                except httptools.HttpParserError:
                    break
                for target in done:
                    recorder.targets.append(target)
                    writer.write(recorder.response)
                done.clear()
                await writer.drain()
                if recorder.hangup and recorder.targets:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.handlers.discard(task)
            writer.close()


async def exchange(port: int, raw: bytes) -> tuple[int | None, bytes]:
    """Send `raw` on a fresh connection; the first status the client got (None: none), and all
    it read until the proxy closed or went quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = b""
    try:
        writer.write(raw)
        await writer.drain()
        with contextlib.suppress(TimeoutError, ConnectionError):
            while True:
                chunk = await asyncio.wait_for(reader.read(65536), 0.3)
                if not chunk:
                    break
                got += chunk
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    status = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.") and b" " in got else None
    return status, got


@dataclass
class Bed:
    haproxy_port: int
    haproxy_backend: Recorder
    lacewing_port: int
    lacewing_backend: Recorder


def _haproxy_config(listen: int, backend: int) -> str:
    return (
        "global\n    nbthread 1\ndefaults\n    mode http\n    option http-keep-alive\n"
        "    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n"
        f"frontend in\n    bind 127.0.0.1:{listen}\n    default_backend out\n"
        f"backend out\n    server app 127.0.0.1:{backend}\n"
    )


async def _listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            raise RuntimeError(f"haproxy exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("haproxy did not listen")


@pytest.fixture
async def bed(tmp_path: Path) -> AsyncIterator[Bed]:
    ours, theirs = Recorder(), Recorder()
    await ours.start()
    await theirs.start()
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    listen = sock.getsockname()[1]
    sock.close()
    config = tmp_path / "haproxy.cfg"
    config.write_text(_haproxy_config(listen, theirs.port))
    proc = subprocess.Popen([HAPROXY, "-f", str(config), "-db"], stderr=subprocess.DEVNULL)
    try:
        await _listening(listen, proc)
        async with proxy(backend_port=ours.port) as server:
            yield Bed(listen, theirs, server.bound["outbound"].port, ours)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        await ours.stop()
        await theirs.stop()


def _refused(status: int | None) -> bool:
    return status is None or status >= 400


async def test_requests_are_never_smuggled_and_refused_where_haproxy_refuses(bed: Bed) -> None:
    rows = []
    for case in CASES:
        bed.haproxy_backend.targets.clear()
        bed.lacewing_backend.targets.clear()
        theirs, _ = await exchange(bed.haproxy_port, case.raw)
        ours, _ = await exchange(bed.lacewing_port, case.raw)
        await asyncio.sleep(0.05)
        seen_theirs = list(bed.haproxy_backend.targets)
        seen_ours = list(bed.lacewing_backend.targets)
        rows.append((case.name, theirs, seen_theirs, ours, seen_ours))
        # what reached our backend is a prefix of what the client meant to send
        assert seen_ours == list(case.intended[: len(seen_ours)]), (case.name, seen_ours)
        if _refused(theirs) and not seen_theirs:
            assert _refused(ours) and not seen_ours, (case.name, theirs, ours, seen_ours)
        if case.http and ours != 200:  # malformed HTTP: the proxy answers with a 4xx
            assert ours is not None and 400 <= ours < 500, (case.name, ours)
        status, _ = await exchange(bed.lacewing_port, b"GET /after HTTP/1.1\r\n" + H + b"\r\n")
        assert status == 200, f"the proxy stopped serving after {case.name!r}"
    print("\ncase | HAProxy status, backend saw | lacewing status, backend saw")
    for name, theirs, seen_theirs, ours, seen_ours in rows:
        print(f"{name} | {theirs} {seen_theirs} | {ours} {seen_ours}")


HANG_UP = {"premature close", "close-delimited body"}  # the backend closes after answering
RESPONSE_CASES = [
    (
        "both Content-Length and chunked",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ),
    ("invalid status line", b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok"),
    ("204 with a body", b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nok"),
    ("304 with a body", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\nok"),
    (
        "interim 1xx first",
        b"HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ),
    ("premature close", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"),
    ("close-delimited body", b"HTTP/1.1 200 OK\r\n\r\nok"),
    (
        "duplicate Content-Length, different",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\nok",
    ),
]


@pytest.mark.parametrize(("name", "response"), RESPONSE_CASES, ids=[c[0] for c in RESPONSE_CASES])
async def test_bad_responses_never_desync_the_client_connection(
    bed: Bed, name: str, response: bytes
) -> None:
    request = b"GET /a HTTP/1.1\r\n" + H + b"\r\n"
    for backend in (bed.haproxy_backend, bed.lacewing_backend):
        backend.response, backend.hangup = response, name in HANG_UP
    theirs, _ = await exchange(bed.haproxy_port, request)
    ours, got = await exchange(bed.lacewing_port, request * 2)
    for backend in (bed.haproxy_backend, bed.lacewing_backend):
        backend.response, backend.hangup = Recorder.response, False
    if _refused(theirs):
        assert _refused(ours), (name, theirs, ours)
    # Whatever came back parses as well-framed responses, at most one per request sent.
    statuses: list[int] = []

    class Sink:
        def on_status(self, status: bytes) -> None:
            pass

        def on_headers_complete(self) -> None:
            statuses.append(parser.get_status_code())

    parser = httptools.HttpResponseParser(Sink())
    with contextlib.suppress(httptools.HttpParserError):
        parser.feed_data(got)
    finals = [s for s in statuses if s >= 200]
    assert len(finals) <= 2, (name, got)
    status, _ = await exchange(bed.lacewing_port, request)
    assert status == 200, f"the proxy stopped serving after {name!r}"
