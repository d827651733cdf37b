"""What an HTTP/1 proxy needs from a message head, as data; no I/O.

`HEADER_KINDS` maps the lower-cased header names a proxy cares about to a kind. The parser
callbacks run once per header, so they classify a name with one dict lookup in `KIND_CACHE`
(the names as they arrive, any case, mapped to their kind or 0), and call `header_kind` only
for a name not seen before; the cache stops growing at `KIND_CACHE_MAX` names, after which
unseen names are classified each time (a lower() and a lookup), so odd clients cannot grow it.

A head is forwarded byte for byte unless it carries hop-by-hop headers (RFC 9110 7.6.1:
Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade and whatever Connection names)
that must not cross the proxy; then `rebuild` writes it anew without them.
`Connection: keep-alive` alone is left in place: it says what the proxy does anyway.
"""

from __future__ import annotations

__all__ = [
    "CONNECTION",
    "CONTENT_LENGTH",
    "EXPECT",
    "HEADER_KINDS",
    "HOP",
    "HOST",
    "KIND_CACHE",
    "KIND_CACHE_MAX",
    "KIND_LENGTHS",
    "TRANSFER_ENCODING",
    "UPGRADE",
    "error_response",
    "header_kind",
    "rebuild",
]

HOST, CONNECTION, HOP, TRANSFER_ENCODING, EXPECT, UPGRADE, CONTENT_LENGTH = range(1, 8)

HEADER_KINDS: dict[bytes, int] = {
    b"host": HOST,
    b"connection": CONNECTION,
    b"keep-alive": HOP,
    b"proxy-connection": HOP,
    b"te": HOP,
    b"trailer": HOP,
    b"upgrade": UPGRADE,
    b"transfer-encoding": TRANSFER_ENCODING,
    b"expect": EXPECT,
    b"content-length": CONTENT_LENGTH,
}
KIND_LENGTHS = frozenset(len(name) for name in HEADER_KINDS)

KIND_CACHE_MAX = 1024
# Header name exactly as received -> its kind, 0 for "not one the proxy cares about". A memo of
# a pure function (the same for every connection), bounded by KIND_CACHE_MAX.
KIND_CACHE: dict[bytes, int] = {}


def header_kind(name: bytes) -> int:
    """The kind of header `name` (0: forward it as is), remembered in `KIND_CACHE`."""
    kind = HEADER_KINDS.get(name.lower(), 0) if len(name) in KIND_LENGTHS else 0
    if len(KIND_CACHE) < KIND_CACHE_MAX:
        KIND_CACHE[name] = kind
    return kind


_DROP_ALWAYS = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer"})

REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


def connection_tokens(values: list[bytes]) -> set[bytes]:
    return {t.strip().lower() for v in values for t in v.split(b",") if t.strip()}


def rebuild(
    first_line: bytes,
    headers: list[tuple[bytes, bytes]],
    connection_values: list[bytes],
    *,
    keep_upgrade: bool,
    close: bool,
    drop_transfer_encoding: bool = False,
    keep_alive: bool = False,
) -> bytes:
    """A head without hop-by-hop headers; `close` adds `Connection: close`, `keep_alive`
    (for HTTP/1.0 clients) `Connection: keep-alive`."""
    drop = set(_DROP_ALWAYS) | connection_tokens(connection_values)
    if keep_upgrade:
        drop.discard(b"upgrade")
    else:
        drop.add(b"upgrade")
    if drop_transfer_encoding:
        drop.add(b"transfer-encoding")
    parts = [first_line, b"\r\n"]
    for name, value in headers:
        if name.lower() not in drop:
            parts += (name, b": ", value, b"\r\n")
    if keep_upgrade:
        parts.append(b"Connection: Upgrade\r\n")
    elif close:
        parts.append(b"Connection: close\r\n")
    elif keep_alive:
        parts.append(b"Connection: keep-alive\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def error_response(status: int, reason: str) -> bytes:
    """The proxy's own response, Linkerd style: `l5d-proxy-error` names what went wrong."""
    body = reason.encode("latin-1", "replace") + b"\n"
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"Error")),
            b"content-type: text/plain\r\n",
            b"l5d-proxy-error: %s\r\n" % reason.encode("latin-1", "replace"),
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )
