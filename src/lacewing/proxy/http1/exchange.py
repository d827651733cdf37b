"""One HTTP/1 request and the state of its exchange, shared by the server and upstream sides.

`Http1Server` creates a `Request` when a request head is complete; the `UpstreamConn` that
carries it reads the flags that shape the response (HEAD, HTTP/1.0, upgrade, 100-continue).
It owns the request's `Pick` (endpoint + balancer ticket), ended exactly once by the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lacewing.proxy.metrics import RouteStats
from lacewing.proxy.targets import Pick

if TYPE_CHECKING:
    from lacewing.proxy.http1.upstream import UpstreamConn

__all__ = ["Request"]


class Request:
    """One request and the state of its exchange. Flags default at class level so that the
    common request sets three attributes, not fourteen (this runs once per request)."""

    upstream: UpstreamConn | None = None
    complete = False
    close_down = False
    chunked = False
    keep_alive = True
    http10 = False
    is_head = False
    upgrade = False
    expect_continue = False
    status = 0
    error: tuple[int, str] | None = None
    replay: bytes | None = None  # the head of a body-less request, kept to retry it once
    reused = False  # sent on a pooled connection (which the app may have just closed)
    pick: Pick | None = None  # the endpoint and its balancer ticket (ended exactly once)

    def __init__(self, route: RouteStats, start: float) -> None:
        self.route = route
        self.start = start
        self.buf: list[bytes] = []
