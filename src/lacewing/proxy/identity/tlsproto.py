"""The TLS protocols inbound termination puts on an accepted socket, one per kind of event loop.

`tls_protocol_for(loop)` picks from `TLS_PROTOCOLS`: on uvloop its compiled SSLProtocol
(the same design as asyncio's, far less CPU per record; it only runs on a uvloop loop, and
its app transport is not an asyncio.Transport subclass but has the whole Transport
interface), on any other loop asyncio's pure-Python one with a 32 KiB read buffer. Both are
subclassed only to call `on_lost()` once when the connection is lost (the expiry watch
forgets the connection then, `identity.expiry`); uvloop keeps its compiled fast paths for
the subclass, since it checks `isinstance`.
"""

from __future__ import annotations

import asyncio
import typing
from asyncio import sslproto
from collections.abc import Callable

__all__ = ["TLS_PROTOCOLS", "LostHook", "tls_protocol_for"]


class LostHook(typing.Protocol):
    """A TLS protocol of ours: `on_lost()` is called once when its connection is lost."""

    on_lost: Callable[[], None] | None


class _MeshSSLProtocol(sslproto.SSLProtocol):
    # asyncio allocates a read buffer of `max_size` per TLS connection (256 KiB by default);
    # TLS records are at most 16 KiB, so 32 KiB loses nothing and saves ~220 KiB a connection.
    max_size = 32 * 1024
    on_lost: Callable[[], None] | None = None  # called once when the connection is lost

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        _call_on_lost(self)


def _call_on_lost(tls: LostHook) -> None:
    on_lost, tls.on_lost = tls.on_lost, None
    if on_lost is not None:
        on_lost()


# Event loop class -> the TLS protocol to terminate with on it. uvloop's SSLProtocol (the same
# design as asyncio's, compiled) only runs on a uvloop loop; its app transport is not an
# asyncio.Transport subclass but has the whole Transport interface, which is all we use.
TLS_PROTOCOLS: dict[type[asyncio.AbstractEventLoop], Callable[..., asyncio.BufferedProtocol]] = {}
try:
    import uvloop
    from uvloop.loop import SSLProtocol as _UvSSLProtocol  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    pass
else:

    class _UvMeshSSLProtocol(_UvSSLProtocol):  # type: ignore[misc]
        """uvloop's TLS protocol (its compiled fast paths kept: uvloop checks isinstance),
        telling `on_lost` once when the connection is lost."""

        on_lost: Callable[[], None] | None = None

        def connection_lost(self, exc: BaseException | None) -> None:
            super().connection_lost(exc)
            _call_on_lost(self)

    TLS_PROTOCOLS[uvloop.Loop] = _UvMeshSSLProtocol


def tls_protocol_for(loop: asyncio.AbstractEventLoop) -> Callable[..., asyncio.BufferedProtocol]:
    """The TLS protocol class to put on an accepted socket of `loop`."""
    return TLS_PROTOCOLS.get(type(loop), _MeshSSLProtocol)
