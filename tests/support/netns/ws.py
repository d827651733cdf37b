"""The little of RFC 6455 the tests need: the handshake key and framing, both directions.

`encode_frame` builds one frame (masked when a client sends it); `read_frame` reads one from
a blocking byte reader. Fragmentation and extensions are not used by the tests.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Callable

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def encode_frame(opcode: int, payload: bytes, *, mask: bool) -> bytes:
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask else 0
    size = len(payload)
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _xor(payload, key)


def read_frame(read_exactly: Callable[[int], bytes]) -> tuple[int, bytes]:
    """Read one frame; returns (opcode, unmasked payload)."""
    first, second = read_exactly(2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", read_exactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", read_exactly(8))
    key = read_exactly(4) if second & 0x80 else b""
    payload = read_exactly(size)
    return first & 0x0F, _xor(payload, key) if key else payload


def _xor(data: bytes, key: bytes) -> bytes:
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(data), "big"
    )
