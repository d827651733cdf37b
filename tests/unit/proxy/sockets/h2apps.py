"""A test HTTP/2 backend and client on asyncio streams (the h2 library), for loopback tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import h2.config
import h2.connection
import h2.events
from h2.connection import ConnectionState

__all__ = ["h2_backend", "h2_requests"]


def _conn(client: bool) -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=client, header_encoding=None)
    )
    conn.initiate_connection()
    return conn


@contextlib.asynccontextmanager
async def h2_backend(delay: float = 0.0) -> AsyncIterator[int]:
    """Answers every request with 200 and its path as the body, after `delay` seconds."""
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        conn = _conn(client=False)
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        if delay:
                            await asyncio.sleep(delay)
                        path = dict(ev.headers)[b":path"]
                        conn.send_headers(ev.stream_id, [(b":status", b"200")])
                        conn.send_data(ev.stream_id, path, end_stream=True)
                writer.write(conn.data_to_send())
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def h2_requests(port: int, paths: list[bytes]) -> tuple[dict[int, bytes], list[object]]:
    """Send every path as a stream of one connection; bodies by stream id, and all events."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = _conn(client=True)
    ids = []
    for path in paths:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"http"),
                                (b":authority", b"web:80"), (b":path", path)],
                          end_stream=True)  # fmt: skip
        ids.append(sid)
    writer.write(conn.data_to_send())
    bodies: dict[int, bytes] = dict.fromkeys(ids, b"")
    ended: set[int] = set()
    seen: list[object] = []
    buf = b""
    async with asyncio.timeout(5):
        while ended != set(ids):
            data = await reader.read(65536)
            assert data, "the proxy closed the connection"
            buf += data
            frames, buf = _frames(buf)
            for ev in [ev for frame in frames for ev in _receive(conn, frame)]:
                seen.append(ev)
                if isinstance(ev, h2.events.DataReceived):
                    bodies[ev.stream_id] += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    ended.add(ev.stream_id)
            writer.write(conn.data_to_send())
    writer.close()
    return bodies, seen


def _frames(buf: bytes) -> tuple[list[bytes], bytes]:
    """Whole HTTP/2 frames at the start of `buf`, and the rest."""
    frames = []
    while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
        n = 9 + int.from_bytes(buf[:3], "big")
        frames.append(buf[:n])
        buf = buf[n:]
    return frames, buf


def _receive(conn: h2.connection.H2Connection, frame: bytes) -> list[h2.events.Event]:
    """One frame into `conn`. After a graceful GOAWAY the h2 library would refuse the rest of
    the streams it still gets answers on: put its state machine back, as the proxy does."""
    events = conn.receive_data(frame)
    if any(isinstance(e, h2.events.ConnectionTerminated) and e.error_code == 0 for e in events):
        conn.state_machine.state = ConnectionState.CLIENT_OPEN
    return events
