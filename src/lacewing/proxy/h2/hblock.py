"""Header blocks: HPACK (the `hpack` library) with a memo for the blocks a connection repeats,
and the checks RFC 9113 8.2-8.3 asks of a header list before it is used.

HPACK is most of what a header costs in Python, and a proxy's connections repeat themselves:
a gRPC channel or a load generator sends the same request head again and again, and once its
fields are in the dynamic table the block is the same bytes every time. Both memos rest on
one fact: a block whose coding did not change the dynamic table means the same thing for as
long as the table stays as it is. So:

- `BlockDecoder.decode(block)` remembers block -> header list when decoding it added and
  evicted nothing; any block that does change the table empties the memo (everything in it
  may now mean something else);
- `BlockEncoder.encode(headers)` remembers header list -> block the same way (the first time
  a list is sent its fields are added to the table, so it is remembered from the second).

A table change is seen from the table itself: its number of entries, or a different newest
entry (`hpack` adds at the left and evicts at the right). A pending table size change is
never memoized. The memos are bounded (`_MEMO` entries, then emptied).

`check_request`, `check_response` and `check_trailers` return None for a valid list, or
why it is malformed (then the stream is reset with PROTOCOL_ERROR): lowercase names,
pseudo-headers first and only the ones the message may have, no connection-specific fields,
no CR, LF or NUL in a value, the pseudo-headers a request or a response needs.
"""

from __future__ import annotations

from collections.abc import Sequence

from hpack import Decoder, Encoder

__all__ = ["BlockDecoder", "BlockEncoder", "check_request", "check_response", "check_trailers"]

Headers = Sequence[tuple[bytes, bytes]]
_MEMO = 256
_TABLE_SIZE = 4096  # the most dynamic table we use for our encoder, whatever a peer allows

_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})
_CONNECTION = frozenset({b"connection", b"keep-alive", b"proxy-connection",
                         b"transfer-encoding", b"upgrade"})  # fmt: skip


def _table_mark(entries: object) -> tuple[int, object]:
    seq = entries  # a deque of (name, value)
    n = len(seq)  # type: ignore[arg-type]
    return n, (seq[0] if n else None)  # type: ignore[index]


class BlockDecoder:
    __slots__ = ("_dec", "_entries", "_memo")

    def __init__(self, max_header_list_size: int) -> None:
        self._dec = Decoder(max_header_list_size=max_header_list_size)
        self._entries = self._dec.header_table.dynamic_entries
        self._memo: dict[bytes, list[tuple[bytes, bytes]]] = {}

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """The header list of `block`; raises hpack's errors for a bad block."""
        memo = self._memo
        hit = memo.get(block)
        if hit is not None:
            return hit
        entries = self._entries
        n = len(entries)
        first = entries[0] if n else None
        headers: list[tuple[bytes, bytes]] = self._dec.decode(block, raw=True)  # type: ignore[assignment]
        if len(entries) == n and (not n or entries[0] is first):
            if len(memo) >= _MEMO:
                memo.clear()
            memo[block] = headers
        elif memo:
            memo.clear()
        return headers


class BlockEncoder:
    __slots__ = ("_enc", "_entries", "_memo")

    def __init__(self) -> None:
        self._enc = Encoder()
        self._entries = self._enc.header_table.dynamic_entries
        self._memo: dict[tuple[tuple[bytes, bytes], ...], bytes] = {}

    def set_table_size(self, size: int) -> None:
        """The peer's SETTINGS_HEADER_TABLE_SIZE (we use at most 4 KiB of it)."""
        size = min(size, _TABLE_SIZE)
        if size != self._enc.header_table_size:
            self._enc.header_table_size = size
            self._entries = self._enc.header_table.dynamic_entries
            self._memo.clear()

    def encode(self, headers: Headers) -> bytes:
        key = tuple(headers)
        memo = self._memo
        hit = memo.get(key)
        if hit is not None:
            return hit
        enc = self._enc
        resized = enc.header_table.resized
        entries = self._entries
        n = len(entries)
        first = entries[0] if n else None
        block = enc.encode(key, huffman=True)
        if not resized and len(entries) == n and (not n or entries[0] is first):
            if len(memo) >= _MEMO:
                memo.clear()
            memo[key] = block
        elif memo:
            memo.clear()
        return block


def _check_fields(headers: Headers, allowed: frozenset[bytes]) -> str | None:
    regular = False
    seen: set[bytes] = set()
    for name, value in headers:
        if not name:
            return "empty header name"
        if name[0] == 0x3A:  # b":"
            if regular:
                return "pseudo-header after a regular header"
            if name not in allowed or name in seen:
                return f"pseudo-header {name!r} not allowed here"
            seen.add(name)
        else:
            regular = True
            if name.lower() != name:
                return "uppercase header name"
            if name in _CONNECTION or (name == b"te" and value != b"trailers"):
                return f"connection-specific header {name!r}"
        if b"\r" in value or b"\n" in value or b"\0" in value:
            return f"CR, LF or NUL in the value of {name!r}"
    return None


def check_request(headers: Headers) -> str | None:
    why = _check_fields(headers, _REQUEST_PSEUDO)
    if why is not None:
        return why
    method = path = scheme = None
    for name, value in headers:
        if name[0] != 0x3A:
            break
        if name == b":method":
            method = value
        elif name == b":path":
            path = value
        elif name == b":scheme":
            scheme = value
    if not method:
        return "no :method"
    if method != b"CONNECT" and (not path or not scheme):
        return "no :path or :scheme"
    return None


_STATUS = frozenset({b":status"})


def check_response(headers: Headers) -> str | None:
    why = _check_fields(headers, _STATUS)
    if why is not None:
        return why
    if not headers or headers[0][0] != b":status":
        return "no :status"
    status = headers[0][1]
    if len(status) != 3 or not status.isdigit():
        return "malformed :status"
    return None


def check_trailers(headers: Headers) -> str | None:
    return _check_fields(headers, frozenset())
