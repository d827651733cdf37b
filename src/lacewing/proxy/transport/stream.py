"""A control-plane stream: one GET to a controller, then JSON lines until the stream ends.

Destination's endpoint streams and the policy controller's inbound-policy streams are read
the same way, so `get_lines(host, port, path, ...)` does the part they share: connect (mutual
TLS when `ssl_context` is a context, or a function returning the proxy's current one: None
while there is no certificate yet, which raises ConnectionError so the caller backs off and
tries again), send `GET path`, read the response head, and yield `(status, reader)`; the
caller reads its lines with `within(reader.readline(), timeout)`. The connection is closed on
the way out, waiting a bounded time for it, so a cancelled stream never hangs its owner.

`within` is `asyncio.wait_for` without its 3.11 flaw: when the awaited thing finishes just as
the task is cancelled, wait_for returns the result and the cancellation is lost (a stream task
cancelled at shutdown went on reading, and `close()` waited for it forever).
`asyncio.timeout` keeps the cancellation; a timeout raises TimeoutError as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from lacewing.proxy.metrics.control import ControlStats

__all__ = ["SslContext", "get_lines", "within"]

T = TypeVar("T")
SslContext = ssl.SSLContext | Callable[[], ssl.SSLContext | None] | None


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    async with asyncio.timeout(seconds):
        return await awaitable


@contextlib.asynccontextmanager
async def get_lines(
    host: str,
    port: int,
    path: str,
    *,
    ssl_context: SslContext,
    server_hostname: str | None,
    timeout: float,
    control: ControlStats | None = None,
) -> AsyncIterator[tuple[bytes, asyncio.StreamReader]]:
    """Open the stream at `path`; yields the response status (b"200") and the reader.
    `control`: where the request and its response head are counted (`control_*` metrics)."""
    context = ssl_context() if callable(ssl_context) else ssl_context
    if context is None and ssl_context is not None:
        raise ConnectionError("no client certificate yet")  # back off and try again
    started = control.request() if control is not None else 0.0
    try:
        reader, writer = await within(
            asyncio.open_connection(
                host, port, ssl=context, server_hostname=server_hostname if context else None
            ),
            timeout,
        )
    except BaseException:
        if control is not None:
            control.response(0, started)
        raise
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode()
        )
        try:
            await writer.drain()
            head = await within(reader.readuntil(b"\r\n\r\n"), timeout)
        except BaseException:
            if control is not None:
                control.response(0, started)
            raise
        status = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
        if control is not None:
            control.response(int(status) if status.isdigit() else 0, started)
        yield status, reader
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await within(writer.wait_closed(), 1.0)
