"""Header lists on their way through the proxy, and the responses the proxy makes itself.

Header lists are lists of `(name, value)` bytes pairs as the codec decoded them, and are sent
on as they came: the codec has already refused (a stream error) any list with uppercase
names, misplaced pseudo-headers or connection-specific fields (RFC 9113 8.2.2: `connection`,
`keep-alive`, `proxy-connection`, `transfer-encoding`, `upgrade`, `te` other than
`trailers`), so nothing hop-by-hop is left to remove.

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
    "grpc_status",
    "is_grpc",
    "pseudo",
]

Headers = Sequence[tuple[bytes, bytes]]
GRPC_UNAVAILABLE = 14
GRPC_PERMISSION_DENIED = 7
GRPC_DEADLINE_EXCEEDED = 4


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
