"""Blocking clients that tests drive from inside a pod (sockets come from `Pod.connect`)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable

from tests.support.netns import ws


class Conn:
    """A socket with a read buffer: read a response head, exact byte counts, frames."""

    def __init__(self, sock: socket.socket, timeout: float = 10) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(256 * 1024)
        if not chunk:
            raise EOFError("peer closed the connection")
        self.buffer += chunk

    def read_until(self, marker: bytes, limit: int = 1 << 20) -> bytes:
        while marker not in self.buffer:
            if len(self.buffer) > limit:
                raise AssertionError(f"no {marker!r} within {limit} bytes")
            self._fill()
        head, _, self.buffer = self.buffer.partition(marker)
        return head + marker

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_head(self) -> tuple[int, dict[str, str]]:
        """Read an HTTP response head; returns (status, lower-cased headers)."""
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        return status, headers

    def read_to_end(self) -> bytes:
        data, self.buffer = self.buffer, b""
        try:
            while chunk := self.sock.recv(256 * 1024):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return data

    def ws_send(self, opcode: int, payload: bytes) -> None:
        self.send(ws.encode_frame(opcode, payload, mask=True))

    def ws_recv(self) -> tuple[int, bytes]:
        return ws.read_frame(self.read_exactly)

    def close(self) -> None:
        self.sock.close()


def send_in_background(sock: socket.socket, chunks: Iterable[bytes]) -> threading.Thread:
    """Send while the caller reads (a full-duplex echo would deadlock otherwise)."""

    def body() -> None:
        for chunk in chunks:
            sock.sendall(chunk)

    thread = threading.Thread(target=body, name="lwt-sender", daemon=True)
    thread.start()
    return thread
