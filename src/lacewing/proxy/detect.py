"""Protocol detection: a pure function of a connection's first bytes.

`detect(prefix)` returns the protocol once the bytes decide it, or `None` while they could
still be more than one thing (the caller reads more, up to `MAX_PREFIX` bytes or the detect
timeout, then calls `detect(prefix, final=True)`, which always decides: opaque).

Rules, first match wins:
- the HTTP/2 connection preface `PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n` -> HTTP2
- a TLS handshake record: 0x16 0x03 (0x00-0x04) -> TLS
- a known HTTP method followed by a space -> HTTP1 (a malformed rest is the HTTP layer's 400)
- anything else -> OPAQUE; a prefix of any of the above that is still too short -> None

`detect_opaque(prefix)` is the same for a port configured opaque: only a TLS record (a meshed
client's mTLS, which the inbound side must still terminate) or OPAQUE.
"""

from __future__ import annotations

import enum

__all__ = ["MAX_PREFIX", "Protocol", "detect", "detect_opaque"]


class Protocol(enum.Enum):
    HTTP1 = "http/1"
    HTTP2 = "h2"
    TLS = "tls"
    OPAQUE = "opaque"


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
METHODS = (
    b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ",
    b"TRACE ", b"PROPFIND ", b"PROPPATCH ", b"MKCOL ", b"COPY ", b"MOVE ", b"LOCK ",
    b"UNLOCK ", b"REPORT ", b"SEARCH ", b"PURGE ",
)  # fmt: skip
MAX_PREFIX = max(len(H2_PREFACE), *(len(m) for m in METHODS))


def detect(prefix: bytes, *, final: bool = False) -> Protocol | None:
    if prefix.startswith(H2_PREFACE):
        return Protocol.HTTP2
    if len(prefix) >= 3 and prefix[0] == 0x16 and prefix[1] == 0x03 and prefix[2] <= 0x04:
        return Protocol.TLS
    if prefix.startswith(METHODS):
        # "PRI " is not in METHODS, so this cannot shadow the HTTP/2 preface.
        return Protocol.HTTP1
    if final:
        return Protocol.OPAQUE
    if _could_still_be(prefix):
        return None
    return Protocol.OPAQUE


def detect_opaque(prefix: bytes, *, final: bool = False) -> Protocol | None:
    if len(prefix) >= 3 and prefix[0] == 0x16 and prefix[1] == 0x03 and prefix[2] <= 0x04:
        return Protocol.TLS
    if not final and len(prefix) < 3 and prefix[:1] == b"\x16" and prefix[1:2] in (b"", b"\x03"):
        return None
    return Protocol.OPAQUE


def _could_still_be(prefix: bytes) -> bool:
    if H2_PREFACE.startswith(prefix):
        return True
    if len(prefix) < 3 and prefix[:1] == b"\x16" and prefix[1:2] in (b"", b"\x03"):
        return True
    return any(m.startswith(prefix) for m in METHODS)
