"""Reading a TLS ClientHello's server name and ALPN from a connection's first bytes.

`parse_client_hello(data)` takes every byte read so far from the client and answers one of:

    NeedMore                      the bytes are a valid beginning; read more and call again
    NotTls(reason)                not a ClientHello we can read (the reason says why)
    ClientHello(sni, alpn)        the first handshake message, complete: its server_name
                                  (None without the extension) and ALPN protocol names

It does no I/O and never raises: a driver feeds it the growing prefix until it decides, and
gives up on its own clock (the detect timeout). It reads, in order:

    TLSPlaintext records          type 22 (handshake), version 3.x, 1..2^14 bytes each; their
                                  payloads are joined until the handshake message is whole,
                                  so a ClientHello split across reads or across records (up to
                                  MAX_RECORDS) is read like one in a single segment
    Handshake                     type 1 (client_hello), 24-bit length <= MAX_HELLO
    ClientHello body              legacy_version 3.x, random[32], session_id<0..32>,
                                  cipher_suites<2..2^16-2> (even), compression_methods<1..>,
                                  then extensions<..2^16-1> (absent in old TLS 1.0-1.2 hellos)
    extension 0, server_name      a list with one host_name (type 0) of printable ASCII
    extension 16, ALPN            a list of 1..255-byte protocol names

Anything else in the record layer or the structure (a length that overruns its container,
bytes left over inside a vector, a repeated extension, a record that is not a handshake, a
handshake message that is not a ClientHello, more than the bounds) is `NotTls`. Bytes after
the ClientHello message (later records, early data) are not looked at. The bounds keep the
driver's buffer under `MAX_BUFFER` bytes whatever the client sends.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_BUFFER",
    "MAX_HELLO",
    "MAX_RECORDS",
    "NEED_MORE",
    "ClientHello",
    "NeedMore",
    "NotTls",
    "parse_client_hello",
]

MAX_HELLO = 16 * 1024
"""The largest ClientHello message read (a proxy's is ~300 B, browsers' with post-quantum key
shares ~2 KiB); a larger one is `NotTls`."""
MAX_RECORDS = 16
"""The most records one ClientHello may be fragmented into."""
MAX_RECORD = 1 << 14  # TLSPlaintext.length limit (RFC 8446 5.1)
RECORD_HEADER = 5
HANDSHAKE_HEADER = 4
MAX_BUFFER = MAX_HELLO + HANDSHAKE_HEADER + MAX_RECORDS * RECORD_HEADER
"""No input longer than this is ever answered `NeedMore`."""

CONTENT_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1
EXT_SERVER_NAME = 0
EXT_ALPN = 16
NAME_TYPE_HOST = 0
_VISIBLE_ASCII = bytes(range(0x21, 0x7F))


@dataclass(frozen=True, slots=True)
class NeedMore:
    """A valid prefix of a ClientHello: read more bytes."""


@dataclass(frozen=True, slots=True)
class NotTls:
    """Not a ClientHello this parser can read; `reason` is for logs."""

    reason: str


@dataclass(frozen=True, slots=True)
class ClientHello:
    sni: str | None
    alpn: tuple[str, ...] = ()


NEED_MORE = NeedMore()
Result = NeedMore | NotTls | ClientHello


class _Malformed(Exception):
    """Internal only: unwinds the structure reader; `parse_client_hello` turns it into NotTls."""


def parse_client_hello(data: bytes | bytearray | memoryview) -> Result:
    """Classify the bytes a client sent first (see the module docstring)."""
    message = _handshake_message(memoryview(data))
    if not isinstance(message, memoryview):
        return message
    try:
        return _client_hello(message)
    except _Malformed as exc:
        return NotTls(str(exc))


def _handshake_message(data: memoryview) -> memoryview | NeedMore | NotTls:
    """Join record payloads until the first handshake message is whole; return its body."""
    payload = bytearray()
    offset = records = 0
    needed: int | None = None  # the handshake message's length once its header is in
    while True:
        header = data[offset : offset + RECORD_HEADER]
        if len(header) >= 1 and header[0] != CONTENT_HANDSHAKE:
            return NotTls(f"record type {header[0]} is not a handshake")
        if len(header) >= 2 and header[1] != 3:
            return NotTls(f"record version {header[1]}.x is not TLS")
        if len(header) < RECORD_HEADER:
            return NEED_MORE
        length = int.from_bytes(header[3:5], "big")
        if length == 0 or length > MAX_RECORD:
            return NotTls(f"record length {length} is out of range")
        records += 1
        if records > MAX_RECORDS:
            return NotTls(f"the ClientHello spans more than {MAX_RECORDS} records")
        start = offset + RECORD_HEADER
        fragment = data[start : start + length]
        payload += fragment
        if needed is None and len(payload) >= HANDSHAKE_HEADER:
            if payload[0] != HANDSHAKE_CLIENT_HELLO:
                return NotTls(f"handshake message type {payload[0]} is not a ClientHello")
            needed = int.from_bytes(payload[1:4], "big")
            if needed > MAX_HELLO:
                return NotTls(f"a {needed}-byte ClientHello is larger than {MAX_HELLO}")
        if needed is not None and len(payload) >= HANDSHAKE_HEADER + needed:
            return memoryview(bytes(payload[HANDSHAKE_HEADER : HANDSHAKE_HEADER + needed]))
        if len(fragment) < length:
            return NEED_MORE
        offset = start + length


class _Reader:
    """Bounds-checked big-endian reads over one vector of the structure."""

    __slots__ = ("data", "pos")

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> memoryview:
        if n > self.remaining():
            raise _Malformed(f"{what} overruns its container")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def vector(self, length_size: int, what: str) -> _Reader:
        return _Reader(self.take(self.uint(length_size, f"{what} length"), what))

    def done(self, what: str) -> None:
        if self.remaining():
            raise _Malformed(f"{self.remaining()} stray bytes after {what}")


def _client_hello(body: memoryview) -> ClientHello:
    hello = _Reader(body)
    major = hello.uint(2, "legacy_version") >> 8
    if major != 3:
        raise _Malformed(f"ClientHello version {major}.x is not TLS")
    hello.take(32, "random")
    session_id = hello.vector(1, "legacy_session_id")
    if session_id.remaining() > 32:
        raise _Malformed("legacy_session_id is longer than 32 bytes")
    suites = hello.vector(2, "cipher_suites")
    if suites.remaining() < 2 or suites.remaining() % 2:
        raise _Malformed("cipher_suites is empty or odd")
    if hello.vector(1, "legacy_compression_methods").remaining() < 1:
        raise _Malformed("legacy_compression_methods is empty")
    if not hello.remaining():  # TLS 1.0-1.2 allow a ClientHello without extensions
        return ClientHello(None)
    extensions = hello.vector(2, "extensions")
    hello.done("extensions")
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    seen: set[int] = set()
    # A hello carries a dozen or more extensions: walk them with plain indexing (a _Reader
    # call per field tripled the cost of a parse) and read only the two we want.
    data, pos, end = extensions.data, 0, len(extensions.data)
    while pos < end:
        if end - pos < 4:
            raise _Malformed("extension header overruns its container")
        kind = data[pos] << 8 | data[pos + 1]
        length = data[pos + 2] << 8 | data[pos + 3]
        start, pos = pos + 4, pos + 4 + length
        if pos > end:
            raise _Malformed(f"extension {kind} overruns its container")
        if kind in seen:
            raise _Malformed(f"extension {kind} appears twice")
        seen.add(kind)
        if kind == EXT_SERVER_NAME:
            sni = _server_name(_Reader(data[start:pos]))
        elif kind == EXT_ALPN:
            alpn = _alpn(_Reader(data[start:pos]))
    return ClientHello(sni, alpn)


def _server_name(ext: _Reader) -> str | None:
    names = ext.vector(2, "server_name_list")
    ext.done("server_name_list")
    host: str | None = None
    while names.remaining():
        name_type = names.uint(1, "server name type")
        name = bytes(names.vector(2, "server name").data)
        if name_type != NAME_TYPE_HOST:
            continue  # RFC 6066 leaves room for other name types; none exist
        if host is not None:
            raise _Malformed("more than one host_name in server_name")
        if not name or name.translate(None, _VISIBLE_ASCII):  # anything left is not allowed
            raise _Malformed("host_name is empty or not printable ASCII")
        host = name.decode("ascii")
    return host


def _alpn(ext: _Reader) -> tuple[str, ...]:
    names = ext.vector(2, "protocol_name_list")
    ext.done("protocol_name_list")
    protocols = []
    while names.remaining():
        name = names.vector(1, "protocol name").data
        if not name:
            raise _Malformed("empty ALPN protocol name")
        protocols.append(bytes(name).decode("latin-1"))  # names are opaque bytes: lossless
    if not protocols:
        raise _Malformed("empty protocol_name_list")
    return tuple(protocols)
