"""One HTTP/1 request and the state of its exchange, shared by the server and upstream sides.

`Http1Server` creates a `Request` when a request head is complete; the `UpstreamConn` that
carries it reads the flags that shape the response (HEAD, HTTP/1.0, upgrade, 100-continue).
It is a `proxy.exchange.Exchange`: its pick (endpoint + balancer ticket) and its response
metrics end exactly once, however the request ends.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lacewing.proxy.exchange import Exchange
from lacewing.proxy.metrics import RouteStats

if TYPE_CHECKING:
    from lacewing.proxy.http1.upstream import UpstreamConn

__all__ = ["Request"]


class Request(Exchange):
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
    error: tuple[int, str] | None = None
    replay: bytes | None = None  # the head of a body-less request, kept to retry it once
    reused = False  # sent on a pooled connection (which the app may have just closed)
    timer: asyncio.TimerHandle | None = None  # the route's request timeout
    try_timer: asyncio.TimerHandle | None = None  # its backend request (per attempt) timeout
    try_timeout = 0.0
    sent: list[bytes] | None = None  # what went upstream, kept to retry (None: not retryable)
    sent_size = 0
    canned: bytes | None = None  # the proxy's own complete response (a redirect) for `error`
    delay = 0.0  # an injected delay still to wait before the request is sent
    drain: tuple[int, str] | None = None  # the proxy's answer, sent once the body is read
    repicked = False  # its connect failed and it went to the balancer's next pick

    def __init__(self, route: RouteStats, start: float) -> None:
        self.route, self.start = route, start
        self.buf: list[bytes] = []
