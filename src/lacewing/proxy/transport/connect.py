"""Opening connections to endpoints: the one seam a TLS layer wraps.

`Connector.connect(addr, factory)` returns `(transport, protocol)` like
`loop.create_connection`, or raises `ConnectRefused` / `ConnectTimeout` (both
`ConnectError`), which the HTTP layer turns into 502 / 504 and the TCP relay into a close.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Protocol, TypeVar

from lacewing.errors import ProtocolError
from lacewing.proxy.config import Addr

__all__ = ["ConnectError", "ConnectRefused", "ConnectTimeout", "Connector", "PlainConnector"]

P = TypeVar("P", bound=asyncio.BaseProtocol)


class ConnectError(ProtocolError):
    """The endpoint could not be reached."""

    reason = "connect error"


class ConnectRefused(ConnectError):
    reason = "connection refused"


class ConnectTimeout(ConnectError):
    reason = "connect timeout"


class Connector(Protocol):
    async def connect(
        self, addr: Addr, factory: Callable[[], P]
    ) -> tuple[asyncio.Transport, P]: ...

    def labels_for(self, addr: Addr) -> tuple[tuple[str, str], ...] | None:
        """The `tls` (and `server_id`) labels a connection to `addr` carries; None: plaintext."""
        ...


class PlainConnector:
    """Plain TCP with TCP_NODELAY (uvloop sets it by default, asyncio does not)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def labels_for(self, addr: Addr) -> None:
        return None

    async def connect(self, addr: Addr, factory: Callable[[], P]) -> tuple[asyncio.Transport, P]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                transport, protocol = await loop.create_connection(factory, addr.host, addr.port)
        except TimeoutError:
            raise ConnectTimeout(f"connecting to {addr} timed out") from None
        except OSError as exc:
            raise ConnectRefused(f"connecting to {addr}: {exc.strerror or exc}") from None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        return transport, protocol
