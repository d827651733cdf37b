"""The dashboard's /api/tap: bounded in time and count, the tap closed at every ending
(bounds, a refusal, the browser going away), at most MAX_TAPS at once, one-line errors."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from lacewing.errors import RuntimeEnvError, UsageError
from lacewing.viz.dashboard.api import Api, Source, Streamed
from lacewing.viz.dashboard.server import DashboardServer, running
from lacewing.viz.dashboard.tap import MAX_TAPS, Tapper
from lacewing.viz.taprelay import TapQuery
from lacewing.viz.tapstream import Opened

TAP = "namespace=shop&resource=deploy/web"


def event(n: int) -> dict[str, Any]:
    return {"direction": "inbound", "method": "GET", "path": f"/p{n}", "status": 200,
            "source": {"identity": "cli.shop"}, "destination": {"pod": "web-0"}}  # fmt: skip


class FakeTap:
    """A tap source: opens, then yields events (or heartbeats) forever; remembers its endings."""

    def __init__(self, heartbeats: bool = False, fail: Exception | None = None,
                 break_after: int | None = None) -> None:  # fmt: skip
        self.heartbeats, self.fail, self.break_after = heartbeats, fail, break_after
        self.queries: list[TapQuery] = []
        self.closed = threading.Event()

    def __call__(
        self, query: TapQuery, opened: Opened, heartbeat: float
    ) -> Iterator[dict[str, Any]]:
        self.queries.append(query)
        return self._events(opened)

    def _events(self, opened: Opened) -> Iterator[dict[str, Any]]:
        try:
            if self.fail is not None:
                raise self.fail
            opened(["web-0", "web-1"], None)
            n = 0
            while True:
                n += 1
                if n == self.break_after:
                    raise RuntimeEnvError("the tap relay's stream broke")
                yield {} if self.heartbeats else event(n)
        finally:
            self.closed.set()


def lines(answer: Any) -> list[Any]:
    assert isinstance(answer, Streamed), answer
    try:
        body = b"".join(answer.chunks)
    finally:
        answer.close()
    return [json.loads(x) if x else None for x in body.decode().split("\n")[:-1]]


def test_a_tap_ends_at_max_events_and_closes_the_source() -> None:
    source = FakeTap()
    answer = Tapper(source).open(TAP + "&max_events=3&path=/p")
    got = lines(answer)
    assert got[0] == {"tapping": ["web-0", "web-1"], "through": None}
    assert [e["path"] for e in got[1:4]] == ["/p1", "/p2", "/p3"]
    assert got[4:] == [{"end": "max_events", "events": 3}]
    assert source.closed.is_set()
    (query,) = source.queries
    assert (query.resource, query.namespace, query.path, query.duration) == (
        "deploy/web", "shop", "/p", 60.0)  # fmt: skip


def test_a_tap_ends_at_its_duration_heartbeats_on_the_way() -> None:
    now = [100.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    source = FakeTap(heartbeats=True)
    got = lines(Tapper(source, clock).open(TAP + "&duration=5s"))
    assert got[0]["tapping"] == ["web-0", "web-1"]
    assert got[1:-1] and all(x is None for x in got[1:-1])  # bare newlines: heartbeats
    assert got[-1] == {"end": "duration", "events": 0}
    assert source.queries[0].duration == 5.0  # the proxies' taps end then too
    assert source.closed.is_set()


@pytest.mark.parametrize(
    ("query", "why"),
    [
        (TAP + "&duration=10m", "tap duration must be more than 0 and at most 300s"),
        (TAP + "&duration=soon", "invalid duration 'soon' for duration"),
        (TAP + "&max_events=0", "tap max_events must be from 1 to 5000"),
        (TAP + "&max_events=99999", "tap max_events must be from 1 to 5000"),
        (TAP + "&max_events=lots", "tap parameter 'max_events': 'lots' is not a whole number"),
        (TAP + "&max_events=1&max_events=2", "tap parameter 'max_events' given twice"),
        ("namespace=shop", "the tap parameter 'resource' is required (deploy/NAME or pod/NAME)"),
        (TAP + "&colour=red", "unknown tap parameter 'colour'"),
        ("namespace=shop&resource=svc/web", "invalid resource 'svc/web'"),
    ],
)
def test_bad_queries_are_a_400_with_one_line(query: str, why: str) -> None:
    source = FakeTap()
    answer = Tapper(source).open(query)
    assert not isinstance(answer, Streamed)
    status, kind, body = answer
    assert (status, kind) == (400, "application/json")
    assert json.loads(body) == {"error": why}
    assert not source.queries  # nothing was tapped


@pytest.mark.parametrize(
    ("fail", "status"),
    [
        (UsageError("no meshed pod of deploy/web in namespace 'shop'"), 400),
        (RuntimeEnvError("tap: web-0: forbidden by the tap policy"), 502),
    ],
)
def test_a_tap_that_cannot_open_is_one_line_and_frees_its_slot(
    fail: Exception, status: int
) -> None:
    tapper = Tapper(FakeTap(fail=fail))
    for _ in range(MAX_TAPS + 1):  # a refusal does not hold one of the slots
        answer = tapper.open(TAP)
        assert not isinstance(answer, Streamed)
        assert answer[0] == status and json.loads(answer[2]) == {"error": str(fail)}


def test_at_most_max_taps_at_once() -> None:
    tapper = Tapper(FakeTap())
    open_ = [tapper.open(TAP) for _ in range(MAX_TAPS)]
    assert all(isinstance(a, Streamed) for a in open_)
    refused = tapper.open(TAP)
    assert not isinstance(refused, Streamed)
    assert refused[0] == 429 and b"at most 4 live taps at once" in refused[2]
    first = open_[0]
    assert isinstance(first, Streamed)
    first.close()
    first.close()  # closing twice frees one slot, once
    again = tapper.open(TAP)
    assert isinstance(again, Streamed)
    assert not isinstance(tapper.open(TAP), Streamed)
    for a in [*open_[1:], again]:
        assert isinstance(a, Streamed)
        a.close()


def test_a_tap_that_breaks_off_says_why_in_its_last_lines() -> None:
    source = FakeTap(break_after=3)
    got = lines(Tapper(source).open(TAP))
    assert [e["path"] for e in got[1:3]] == ["/p1", "/p2"]
    assert got[3:] == [{"error": "the tap relay's stream broke"}, {"end": "ended", "events": 2}]
    assert source.closed.is_set()


def test_no_tap_source_is_a_404() -> None:
    answer = Tapper(None).open(TAP)
    assert not isinstance(answer, Streamed) and answer[0] == 404


class NoPrometheus:
    where = "none"

    def query(self, promql: str, at: float | None = None) -> list[Any]:
        return []


def test_the_server_streams_chunked_json_lines() -> None:
    source = FakeTap()
    api = Api(Source(NoPrometheus(), lambda kind, ns: [], source))  # type: ignore[arg-type]
    with (
        running(DashboardServer(api)) as server,
        urllib.request.urlopen(server.url + "api/tap?" + TAP + "&max_events=2", timeout=10) as r,
    ):
        assert r.headers["Content-Type"] == "application/x-ndjson"
        assert r.headers["Transfer-Encoding"] == "chunked"
        got = [json.loads(line) for line in r.read().decode().splitlines()]
    assert got[0]["tapping"] == ["web-0", "web-1"] and len(got) == 4
    assert got[-1] == {"end": "max_events", "events": 2}
    assert source.closed.wait(5)


def test_the_tap_stops_when_the_browser_goes_away() -> None:
    source = FakeTap(heartbeats=True)
    api = Api(Source(NoPrometheus(), lambda kind, ns: [], source))  # type: ignore[arg-type]
    with running(DashboardServer(api)) as server:
        port = int(server.url.rsplit(":", 1)[1].strip("/"))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as browser:
            browser.sendall(b"GET /api/tap?" + TAP.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            seen = b""
            while b'"tapping"' not in seen:
                chunk = browser.recv(4096)
                assert chunk, seen
                seen += chunk
            assert b"200 OK" in seen
            assert not source.closed.is_set()  # heartbeats: the tap is open, the duration is 60 s
        # the browser closed its side: the server notices within a heartbeat or two
        assert source.closed.wait(10), "the tap was not closed"
