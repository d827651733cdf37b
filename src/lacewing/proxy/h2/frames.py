"""HTTP/2 frames on the wire (RFC 9113 section 4 and 6): constants, the 9-byte frame header,
and the serialized control frames the connection sends.

Every frame is a 9-byte header (24-bit length, type, flags, reserved bit + 31-bit stream id)
and `length` bytes of payload. `parse_head` reads one header at an offset of a buffer;
the payload is interpreted by `codec.H2Codec`, which knows the connection's state. Nothing
here keeps state or does I/O.

A peer that breaks the protocol gets an `H2Error`: a `lacewing.errors.ProtocolError` that
carries the RFC's error `code` and whether it ends the connection (a GOAWAY) or only its
stream (a RST_STREAM).
"""

from __future__ import annotations

import struct
from enum import IntEnum

from lacewing.errors import ProtocolError

__all__ = [
    "ACK",
    "END_HEADERS",
    "END_STREAM",
    "PADDED",
    "PREFACE",
    "PRIORITY_FLAG",
    "ErrorCodes",
    "FrameType",
    "H2Error",
    "Setting",
    "frame",
    "goaway",
    "parse_head",
    "ping",
    "rst_stream",
    "settings",
    "window_update",
]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEAD_LEN = 9
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65535
DEFAULT_FRAME_SIZE = 16384
MAX_FRAME_SIZE = 2**24 - 1

END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20


class FrameType(IntEnum):
    DATA = 0
    HEADERS = 1
    PRIORITY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PUSH_PROMISE = 5
    PING = 6
    GOAWAY = 7
    WINDOW_UPDATE = 8
    CONTINUATION = 9


class ErrorCodes(IntEnum):
    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class Setting(IntEnum):
    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6


class H2Error(ProtocolError):
    """The peer broke HTTP/2: `code` is the RFC 9113 error code we answer with; `stream` is
    the stream id for a stream error (RST_STREAM), 0 for a connection error (GOAWAY)."""

    def __init__(self, code: int, message: str, stream: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.stream = stream


HEAD = _HEAD = struct.Struct(">BHBBL")  # length (24 bits: high byte, low 16), type, flags, id
_U32 = struct.Struct(">L")
_SETTING = struct.Struct(">HL")
_GOAWAY = struct.Struct(">LL")


def parse_head(buf: bytes | bytearray, pos: int) -> tuple[int, int, int, int]:
    """(length, type, flags, stream id) of the frame header at `buf[pos:pos+9]`."""
    hi, lo, ftype, flags, sid = _HEAD.unpack_from(buf, pos)
    return (hi << 16) | lo, ftype, flags, sid & 0x7FFFFFFF


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _HEAD.pack(n >> 16, n & 0xFFFF, ftype, flags, sid) + payload


def settings(values: dict[int, int] | None = None, ack: bool = False) -> bytes:
    payload = b"".join(_SETTING.pack(k, v) for k, v in (values or {}).items())
    return frame(FrameType.SETTINGS, ACK if ack else 0, 0, payload)


def window_update(sid: int, increment: int) -> bytes:
    return frame(FrameType.WINDOW_UPDATE, 0, sid, _U32.pack(increment))


def rst_stream(sid: int, code: int) -> bytes:
    return frame(FrameType.RST_STREAM, 0, sid, _U32.pack(code))


def goaway(last_sid: int, code: int, debug: bytes = b"") -> bytes:
    return frame(FrameType.GOAWAY, 0, 0, _GOAWAY.pack(last_sid, code) + debug)


def ping(data: bytes, ack: bool = False) -> bytes:
    return frame(FrameType.PING, ACK if ack else 0, 0, data)


def unpack_u32(payload: bytes) -> int:
    value: int = _U32.unpack(payload)[0]
    return value


def unpack_settings(payload: bytes) -> list[tuple[int, int]]:
    return [_SETTING.unpack_from(payload, i) for i in range(0, len(payload), 6)]


def unpack_goaway(payload: bytes) -> tuple[int, int]:
    last, code = _GOAWAY.unpack_from(payload, 0)
    return last & 0x7FFFFFFF, code
