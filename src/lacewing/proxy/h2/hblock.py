"""Header blocks: HPACK (the `hpack` library) with a memo for the blocks a connection repeats,
and the checks RFC 9113 8.2-8.3 asks of a header list before it is used.

HPACK is most of what a header costs in Python, and a proxy's connections repeat themselves:
a gRPC channel or a load generator sends the same request head again and again, and an
encoder that adds the same fields to its dynamic table each time (nginx does) leaves the
table as it found it once it is full of them. Decoding (or encoding) is a function of the
input and the dynamic table: `_Memo` remembers (input, table state) -> (output, table state
after), so a repeated block in a repeated state costs one dict lookup, plus putting the
table back in the state after when that differs.

Table states are numbered: a state is the table's entries, size and maximum size, and the
memo keeps the number of the state the table is in, so a lookup hashes only the input and a
small int; a state is copied and hashed only when a block was not in the memo. Decoded lists
are tuples, and a repeated block gives the same tuple; the encoder finds a tuple it has seen
by its identity (the entry holds it, so its id cannot be reused), so a header list that one
connection decodes and another encodes (a proxy passing a request or response head on)
costs no hashing of its fields at all. A pending
table size change is never memoized on the encoder (its next block must carry the change).
The decoder's memo also keeps what the RFC checks said of the list. The memo is bounded in
bytes (`_MEMO_BYTES`, `_STATE_BYTES`: 32 KiB each per direction of a connection) and
entries (`_MEMO`), then emptied; a block over 2 KiB is never remembered.

`check_request`, `check_response` and `check_trailers` return None for a valid list, or
why it is malformed (then the stream is reset with PROTOCOL_ERROR): lowercase names,
pseudo-headers first and only the ones the message may have, no connection-specific fields,
no CR, LF or NUL in a value nor whitespace around it, the pseudo-headers a request or a
response needs.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from hpack import Decoder, Encoder
from hpack.table import HeaderTable

__all__ = [
    "BlockDecoder",
    "BlockEncoder",
    "HeaderTuple",
    "check_request",
    "check_response",
    "check_trailers",
]

Headers = Sequence[tuple[bytes, bytes]]
HeaderTuple = tuple[tuple[bytes, bytes], ...]
_SAME = object()  # marks an encoder entry found by the identity of its tuple
_MEMO = 512  # entries, and table states
_MEMO_BYTES = 32 * 1024  # what remembered inputs and outputs may add up to
_STATE_BYTES = 32 * 1024  # what remembered table states may hold
_TABLE_SIZE = 4096  # the most dynamic table we use for our encoder, whatever a peer allows

_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})
_CONNECTION = frozenset({b"connection", b"keep-alive", b"proxy-connection",
                         b"transfer-encoding", b"upgrade"})  # fmt: skip

Check = Callable[[Headers], "str | None"]
_SPACE = (0x20, 0x09)
_State = tuple[tuple[tuple[bytes, bytes], ...], int, int]


class _Memo:
    """(input, table state) -> (output, state after), for one HPACK table.

    Bounded in bytes, not only in entries (a peer chooses what it sends): the inputs and outputs
    remembered add up to at most `_MEMO_BYTES`, one of them to a sixteenth of that (larger
    blocks are coded each time), and the table states to `_STATE_BYTES` of table contents;
    past either, the memo starts again empty."""

    __slots__ = ("_bytes", "_ids", "_memo", "_state_bytes", "_states", "_table", "state")

    def __init__(self, table: HeaderTable) -> None:
        self._table = table
        self._ids: dict[_State, int] = {}
        self._states: list[_State] = []
        # (input, extra, state before) -> (output, state after, object the entry keeps)
        self._memo: dict[tuple[Hashable, Hashable, int], tuple[Any, int, object]] = {}
        self._bytes = self._state_bytes = 0
        self.state = self.register()

    def _clear(self) -> None:
        self._ids.clear()
        self._states.clear()
        self._memo.clear()
        self._bytes = self._state_bytes = 0

    def register(self) -> int:
        """The number of the state the table is in now (after coding outside the memo)."""
        t = self._table
        snap: _State = (tuple(t.dynamic_entries), t._current_size, t._maxsize)
        sid = self._ids.get(snap)
        if sid is None:
            cost = t._current_size + 8 * len(snap[0]) + 64
            if len(self._states) >= _MEMO or self._state_bytes + cost > _STATE_BYTES:
                self._clear()
            self._state_bytes += cost
            sid = self._ids[snap] = len(self._states)
            self._states.append(snap)
        self.state = sid
        return sid

    def get(self, key: Hashable, extra: Hashable = None) -> Any:
        hit = self._memo.get((key, extra, self.state))
        if hit is None:
            return None
        after = hit[1]
        if after != self.state:
            self.move(after)
        return hit[0]

    def move(self, after: int) -> None:
        """Put the table in state `after` (what coding a remembered input left it in)."""
        entries, size, maxsize = self._states[after]
        t = self._table
        t.dynamic_entries.clear()
        t.dynamic_entries.extend(entries)
        t._current_size, t._maxsize = size, maxsize
        self.state = after

    def put(self, key: Hashable, extra: Hashable, before: int, out: Any, size: int,
            keep: object = None) -> int:  # fmt: skip
        """Remember `out` for (`key`, `extra`) in state `before`; `size`: their bytes
        together; `keep`: an object the entry holds on to (`BlockEncoder`'s identity entries).
        Returns the state after, or -1 when nothing was remembered."""
        states = len(self._states)
        after = self.register()
        if len(self._states) < states:
            return -1  # emptied: `before` means nothing any more
        return self.remember(key, extra, before, out, after, size, keep)

    def remember(self, key: Hashable, extra: Hashable, before: int, out: Any, after: int,
                 size: int, keep: object = None) -> int:  # fmt: skip
        """`put` for a transition whose state after is known (no snapshot of the table)."""
        if size > _MEMO_BYTES // 16:
            return -1  # too big to keep
        if len(self._memo) >= _MEMO or self._bytes + size > _MEMO_BYTES:
            self._memo.clear()
            self._bytes = 0
        self._bytes += size
        self._memo[(key, extra, before)] = (out, after, keep)
        return after


def _size(headers: Headers) -> int:
    return sum(len(n) + len(v) + 32 for n, v in headers)


class BlockDecoder:
    __slots__ = ("_dec", "_memo")

    def __init__(self, max_header_list_size: int) -> None:
        self._dec = Decoder(max_header_list_size=max_header_list_size)
        self._memo = _Memo(self._dec.header_table)

    def decode(self, block: bytes, check: Check | None) -> tuple[HeaderTuple, str | None]:
        """The header list of `block` (a tuple: a repeated block gives the same object) and
        what `check` says of it; raises hpack's errors."""
        memo = self._memo
        hit = memo._memo.get((block, check, memo.state))  # `_Memo.get`, inlined: per block
        if hit is not None:
            if hit[1] != memo.state:
                memo.move(hit[1])
            out: tuple[HeaderTuple, str | None] = hit[0]
            return out
        before = memo.state
        try:
            headers: HeaderTuple = tuple(self._dec.decode(block, raw=True))
        except BaseException:
            memo.register()
            raise
        out = (headers, None if check is None else check(headers))
        memo.put(block, check, before, out, len(block) + _size(headers))
        return out


class BlockEncoder:
    __slots__ = ("_enc", "_memo")

    def __init__(self) -> None:
        self._enc = Encoder()
        self._memo = _Memo(self._enc.header_table)

    def set_table_size(self, size: int) -> None:
        """The peer's SETTINGS_HEADER_TABLE_SIZE (we use at most 4 KiB of it)."""
        size = min(size, _TABLE_SIZE)
        if size != self._enc.header_table_size:
            self._enc.header_table_size = size
            self._memo.register()

    def encode(self, headers: Headers) -> bytes:
        """The block for `headers`. A tuple seen before (a decoder's output, passed on) is
        found by identity: the entry holds the tuple, so its id stays its own."""
        memo = self._memo
        before = memo.state
        same = type(headers) is tuple
        if same:
            hit = memo._memo.get((id(headers), _SAME, before))
            if hit is not None and hit[2] is headers:
                if hit[1] != before:
                    memo.move(hit[1])
                found: bytes = hit[0]
                return found
        key = tuple(headers)
        block: bytes | None = memo.get(key)
        if block is None:
            enc = self._enc
            resized = enc.header_table.resized
            block = enc.encode(key, huffman=True)
            if resized:
                memo.register()
                return block
            after = memo.put(key, None, before, block, len(block) + _size(key))
        else:
            after = memo.state
        if same and after >= 0:
            memo.remember(
                id(headers), _SAME, before, block, after, len(block) + _size(key), headers
            )
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
        if value and (value[0] in _SPACE or value[-1] in _SPACE):
            return f"whitespace around the value of {name!r}"
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
