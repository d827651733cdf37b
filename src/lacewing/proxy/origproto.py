"""HTTP/1 messages carried as HTTP/2 streams between two meshed proxies (Linkerd's
`l5d-orig-proto`): the four head mappings, as data; no I/O.

    app --HTTP/1--> outbound proxy ==HTTP/2 stream, l5d-orig-proto: HTTP/1.1==> inbound proxy
        --HTTP/1--> app, and the response back the same way

Client side (outbound): `request_fields` turns an HTTP/1 request head into an HTTP/2 header
list: `:method`, `:scheme`, `:authority` (from Host, or from an absolute-form target),
`:path`, then the headers with lower-cased names, without the hop-by-hop ones HTTP/2 forbids
(RFC 9113 8.2.2: Connection and whatever it names, Keep-Alive, Proxy-Connection,
Transfer-Encoding, Upgrade, Trailer, TE other than `trailers`) and without Host, plus
`l5d-orig-proto` naming the original version. The body goes as DATA, de-chunked.
`response_head` turns the HTTP/2 response head back into an HTTP/1 one and says how its body
is framed (`Framing`): with its Content-Length when the endpoint gave one, else chunked for an
HTTP/1.1 client, else close-delimited (HTTP/1.0); no body at all for HEAD, 1xx, 204 and 304.

Server side (inbound): `orig_version` says whether a stream carries an HTTP/1 request (the
header's value) and `request_head` rebuilds that request for the app: its version, Host from
`:authority`, the header removed, the body framed by its Content-Length, else chunked (an
HTTP/1.0 request with a body of unknown length cannot be framed: refused).
`response_fields` turns the app's HTTP/1 response head into the HTTP/2 one.

What is refused raises `Untranslatable` (a `lacewing.errors.ProtocolError`); its `status` is
the answer the proxy gives (400). Upgrades and CONNECT are never translated: the caller
checks `translatable` first and keeps them on HTTP/1.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

from lacewing.errors import ProtocolError

__all__ = [
    "LAST_CHUNK",
    "ORIG_PROTO",
    "Framing",
    "ResponseHead",
    "Untranslatable",
    "chunk",
    "orig_version",
    "request_fields",
    "request_head",
    "response_fields",
    "response_head",
    "translatable",
]

ORIG_PROTO = b"l5d-orig-proto"
VERSIONS = {b"HTTP/1.1": "1.1", b"HTTP/1.0": "1.0"}
Fields = list[tuple[bytes, bytes]]

# never sent as HTTP/2 (RFC 9113 8.2.2), nor on to an HTTP/1 peer (RFC 9110 7.6.1)
_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                  b"upgrade", b"te", b"trailer"})  # fmt: skip
_NO_BODY = frozenset({204, 304})


class Untranslatable(ProtocolError):
    """A message that cannot cross between HTTP/1 and HTTP/2 as asked."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


class Framing(enum.Enum):
    NONE = "none"  # no body (HEAD, 1xx, 204, 304, or the stream ended with its head)
    LENGTH = "length"  # Content-Length
    CHUNKED = "chunked"
    CLOSE = "close"  # the body ends when the connection closes (HTTP/1.0)


@dataclass(frozen=True, slots=True)
class ResponseHead:
    head: bytes  # status line and headers, up to and with the empty line
    framing: Framing
    close: bool  # the client connection closes after this response


def translatable(method: bytes, upgrade: bool) -> bool:
    """May this HTTP/1 request travel as an HTTP/2 stream? Not CONNECT, not an upgrade."""
    return not upgrade and method != b"CONNECT"


def _named(values: Iterable[bytes]) -> set[bytes]:
    return {t.strip().lower() for v in values for t in v.split(b",") if t.strip()}


def _plain(headers: Sequence[tuple[bytes, bytes]], extra_drop: frozenset[bytes]) -> Fields:
    """The headers without hop-by-hop ones, names lower-cased, values trimmed (HTTP/2 forbids
    leading and trailing whitespace); `te: trailers` survives, the only TE HTTP/2 allows."""
    drop = _HOP | extra_drop | _named(v for k, v in headers if k.lower() == b"connection")
    out: Fields = []
    trailers_te = False
    for name, value in headers:
        low = name.lower()
        if low in drop:
            if low == b"te" and b"trailers" in _named((value,)):
                trailers_te = True
            continue
        out.append((low, value.strip()))
    if trailers_te and b"te" not in _named(v for k, v in headers if k.lower() == b"connection"):
        out.append((b"te", b"trailers"))
    return out


def request_fields(method: bytes, target: bytes, version: str,
                   headers: Sequence[tuple[bytes, bytes]], *, default_authority: bytes
                   ) -> Fields:  # fmt: skip
    """The HTTP/2 header list of an HTTP/1 request (`version` "1.1" or "1.0")."""
    scheme, authority, path = b"http", b"", target
    if target[:7].lower() == b"http://" or target[:8].lower() == b"https://":
        scheme, _, rest = target.partition(b"://")
        scheme = scheme.lower()
        slash = rest.find(b"/")
        authority, path = (rest, b"/") if slash < 0 else (rest[:slash], rest[slash:])
    hosts = [v.strip() for k, v in headers if k.lower() == b"host"]
    if len(hosts) > 1:
        raise Untranslatable("more than one Host header")
    if not authority:
        authority = hosts[0] if hosts and hosts[0] else default_authority
    if not path or (path[:1] != b"/" and not (path == b"*" and method == b"OPTIONS")):
        raise Untranslatable(f"request target {target[:64].decode('latin-1')!r} has no path")
    fields: Fields = [(b":method", method), (b":scheme", scheme), (b":authority", authority),
                      (b":path", path)]  # fmt: skip
    fields += _plain(headers, frozenset({b"host", ORIG_PROTO}))
    fields.append((ORIG_PROTO, b"HTTP/" + version.encode()))
    return fields


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b"Unknown"
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


def _length(fields: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in fields:
        if name == b"content-length":
            return value
    return None


def response_head(fields: Sequence[tuple[bytes, bytes]], *, http10: bool, keep_alive: bool,
                  is_head: bool, ended: bool) -> ResponseHead:  # fmt: skip
    """The HTTP/1 response to a client from the HTTP/2 response head `fields` (`ended`: the
    stream ended with it). Trailers, if any come later, are not sent to an HTTP/1 client."""
    status = 0
    parts: list[bytes] = []
    for name, value in fields:
        if name == b":status":
            status = int(value) if value.isdigit() else 0
        elif name[:1] != b":" and name not in _HOP:
            parts += (name, b": ", value, b"\r\n")
    if not 100 <= status <= 999:
        raise Untranslatable("response without a valid :status", 502)
    close = not keep_alive
    if is_head or status < 200 or status in _NO_BODY:
        framing = Framing.NONE
    elif _length(fields) is not None:
        framing = Framing.LENGTH
    elif ended:
        framing = Framing.NONE
        parts.append(b"content-length: 0\r\n")
    elif not http10:
        framing = Framing.CHUNKED
        parts.append(b"transfer-encoding: chunked\r\n")
    else:
        framing, close = Framing.CLOSE, True
    if status >= 200:
        if close:
            parts.append(b"connection: close\r\n")
        elif http10:
            parts.append(b"connection: keep-alive\r\n")
    head = b"".join((_status_line(status), *parts, b"\r\n"))
    return ResponseHead(head, framing, close and status >= 200)


def orig_version(fields: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The original HTTP/1 version a stream carries ("1.1", "1.0"), None when it is HTTP/2
    to begin with. An unknown value is refused."""
    for name, value in fields:
        if name == ORIG_PROTO:
            version = VERSIONS.get(value.strip().upper())
            if version is None:
                raise Untranslatable(f"l5d-orig-proto {value[:32].decode('latin-1')!r} unknown")
            return version
    return None


def request_head(fields: Sequence[tuple[bytes, bytes]], version: str, *, ended: bool
                 ) -> tuple[bytes, bool]:  # fmt: skip
    """The HTTP/1 request head for the app from a stream's header list, and whether its body
    goes chunked (no Content-Length, more to come; HTTP/1.1 only). The app's connection is a
    pooled one: an HTTP/1.0 request says `Connection: keep-alive`."""
    method = path = authority = b""
    parts: list[bytes] = []
    for name, value in fields:
        if name == b":method":
            method = value
        elif name == b":path":
            path = value
        elif name == b":authority":
            authority = value
        elif name[:1] == b":" or name in _HOP or name == ORIG_PROTO:
            continue
        elif name == b"host":
            authority = authority or value
        else:
            parts += (name, b": ", value, b"\r\n")
    if not method or not path:
        raise Untranslatable("stream without :method or :path")
    chunked = False
    if _length(fields) is None and not ended:
        if version == "1.0":
            raise Untranslatable("HTTP/1.0 request body without Content-Length")
        chunked = True
        parts.append(b"transfer-encoding: chunked\r\n")
    if version == "1.0":
        parts.append(b"connection: keep-alive\r\n")
    host = b"host: %s\r\n" % authority if authority else b""
    first = b"%s %s HTTP/%s\r\n" % (method, path, version.encode())
    return b"".join((first, host, *parts, b"\r\n")), chunked


def response_fields(status: int, headers: Sequence[tuple[bytes, bytes]]) -> Fields:
    """The HTTP/2 response head of the app's HTTP/1 response."""
    return [(b":status", b"%d" % status), *_plain(headers, frozenset({ORIG_PROTO}))]


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked HTTP/1 body (never empty: that would end the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
