"""An in-memory `asyncio.Transport` for testing protocol code without sockets.

It records what was written, whether reading is paused, EOF and close; `high_water` makes it
call the protocol's `pause_writing()` once `buffered` passes it, and `drain()` empties the
buffer and calls `resume_writing()`, the way a socket transport would when the peer reads.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["FakeTransport"]


class FakeTransport(asyncio.Transport):
    def __init__(self, protocol: asyncio.BaseProtocol | None = None, high_water: int = 1 << 30,
                 extra: dict[str, Any] | None = None) -> None:  # fmt: skip
        super().__init__(extra)
        self.protocol = protocol
        self.high_water = high_water
        self.written: list[bytes] = []
        self.buffered = 0
        self.reading = True
        self.eof_written = False
        self.closed = False
        self.aborted = False
        self._writing_paused = False

    def data(self) -> bytes:
        return b"".join(self.written)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))
        self.buffered += len(data)
        if self.buffered > self.high_water and not self._writing_paused and self.protocol:
            self._writing_paused = True
            self.protocol.pause_writing()

    def drain(self) -> None:
        self.buffered = 0
        if self._writing_paused and self.protocol:
            self._writing_paused = False
            self.protocol.resume_writing()

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.protocol:
                self.protocol.connection_lost(None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def _force_close(self, exc: Exception | None) -> None:
        """What asyncio's TLS protocol calls on a fatal error. As socket transports do, the
        protocol hears `connection_lost` on the next loop iteration, not from inside."""
        if not self.closed:
            self.closed = self.aborted = True
            if self.protocol:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, exc)
