"""Header lists on their way through the proxy, and the responses the proxy makes itself.

Header lists are lists of `(name, value)` bytes pairs, names lowercase (`hblock` refuses
uppercase names and connection-specific headers on input). What still has to go before a list
is sent on: hop-by-hop headers (RFC 9113 8.2.2: `connection`, `keep-alive`,
`proxy-connection`, `transfer-encoding`, `upgrade`, and `te` unless it is `trailers`), which a
peer speaking HTTP/2 should not have sent but an HTTP/1 gateway in front of it may have.

gRPC is recognised by `content-type: application/grpc[+proto|...]`; its outcome is
`grpc-status` in the trailers or in a trailers-only response. When the proxy cannot reach an
endpoint it answers as Linkerd does: `:status 502` for plain HTTP/2, and for gRPC a
trailers-only `200` with `grpc-status: 14` (UNAVAILABLE), which gRPC clients understand; a
request inbound policy denies gets `403`, or for gRPC `grpc-status: 7` (PERMISSION_DENIED).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "GRPC_DEADLINE_EXCEEDED",
    "GRPC_PERMISSION_DENIED",
    "GRPC_UNAVAILABLE",
    "Headers",
    "error_headers",
    "forwardable",
    "grpc_status",
    "is_grpc",
    "pseudo",
]

Headers = Sequence[tuple[bytes, bytes]]
GRPC_UNAVAILABLE = 14
GRPC_PERMISSION_DENIED = 7
GRPC_DEADLINE_EXCEEDED = 4

_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                  b"upgrade"})  # fmt: skip


def forwardable(headers: Headers) -> list[tuple[bytes, bytes]]:
    """`headers` without hop-by-hop fields (the common case costs one pass, no copy of data)."""
    out = []
    for name, value in headers:
        if name in _HOP or (name == b"te" and value.strip().lower() != b"trailers"):
            continue
        out.append((name, value))
    return out


def pseudo(headers: Headers, name: bytes) -> bytes | None:
    """The value of pseudo-header (or header) `name`; pseudo-headers come first."""
    for key, value in headers:
        if key == name:
            return value
    return None


def is_grpc(headers: Headers) -> bool:
    ctype = pseudo(headers, b"content-type")
    return ctype is not None and ctype.startswith(b"application/grpc")


def grpc_status(headers: Headers) -> int | None:
    """`grpc-status` as a number; None when absent or not a number."""
    value = pseudo(headers, b"grpc-status")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def error_headers(grpc: bool, status: int, message: str,
                  grpc_code: int = GRPC_UNAVAILABLE) -> list[tuple[bytes, bytes]]:  # fmt: skip
    """Headers of the proxy's own error answer (the gRPC one is trailers-only, no body)."""
    if grpc:
        return [(b":status", b"200"), (b"content-type", b"application/grpc"),
                (b"grpc-status", b"%d" % grpc_code),
                (b"grpc-message", message.encode("ascii", "replace"))]  # fmt: skip
    return [(b":status", b"%d" % status), (b"content-type", b"text/plain"),
            (b"content-length", b"%d" % (len(message) + 1))]  # fmt: skip
