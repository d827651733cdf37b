"""Route filters on HTTP/1 heads: header modifiers and redirects, as bytes in, bytes out.

A head is the request or status line, `Name: value` lines and the blank line, as the codec
forwards it. `modify_head` applies a Gateway API header modifier: `set` replaces every line
of that name (or appends one), `add` appends, `remove` drops every line of that name; names
compare case-insensitively and the other lines keep their order and bytes. `redirect` builds
the complete response of a RequestRedirect filter (`Location` from the filter and the
request, no body). `modify_fields` is the same modifier on an HTTP/2 header list (pseudo
headers stay first and are never touched; names go out lower case, as HTTP/2 wants). Only
routes that configure a filter pay for this (the common request's
head is forwarded untouched). Pure: no I/O.
"""

from __future__ import annotations

from lacewing.core.routes import HeaderModifier, PathMatch, Redirect

__all__ = ["location", "modify_fields", "modify_head", "own_response", "redirect_response"]

_REASONS = {301: b"Moved Permanently", 302: b"Found", 303: b"See Other",
            307: b"Temporary Redirect", 308: b"Permanent Redirect", 404: b"Not Found",
            500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable",
            504: b"Gateway Timeout"}  # fmt: skip


def modify_head(head: bytes, mod: HeaderModifier) -> bytes:
    lines = head[: head.find(b"\r\n\r\n")].split(b"\r\n")
    first, fields = lines[0], lines[1:]
    drop = {n.lower().encode("latin-1") for n in mod.remove}
    drop.update(n.lower().encode("latin-1") for n, _ in mod.set)
    kept = [f for f in fields if f.partition(b":")[0].strip().lower() not in drop]
    for name, value in (*mod.set, *mod.add):
        kept.append(b"%s: %s" % (name.encode("latin-1"), value.encode("latin-1")))
    return b"\r\n".join((first, *kept)) + b"\r\n\r\n"


def modify_fields(fields: list[tuple[bytes, bytes]],
                  mod: HeaderModifier) -> list[tuple[bytes, bytes]]:  # fmt: skip
    drop = {n.lower().encode("latin-1") for n in mod.remove}
    drop.update(n.lower().encode("latin-1") for n, _ in mod.set)
    kept = [f for f in fields if f[0] not in drop or f[0][:1] == b":"]
    for name, value in (*mod.set, *mod.add):
        kept.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return kept


def location(redirect: Redirect, host: str, target: str, matched: PathMatch) -> str:
    """The `Location` of a redirect for a request to `host` (Host header) and `target`."""
    path, sep, query = target.partition("?")
    if redirect.full_path is not None:
        path = redirect.full_path
    elif redirect.prefix is not None and matched.kind == "PathPrefix":
        rest = path[len(matched.value.rstrip("/")) :]
        path = redirect.prefix.rstrip("/") + rest if rest else redirect.prefix
    scheme = redirect.scheme or "http"
    hostname, _, port_text = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    hostname = redirect.hostname or hostname or "localhost"
    port = redirect.port
    if port is None and redirect.scheme is None and port_text.isdigit():
        port = int(port_text)
    default = 443 if scheme == "https" else 80
    netloc = hostname if port in (None, default) else f"{hostname}:{port}"
    return f"{scheme}://{netloc}{path}{sep}{query}"


def redirect_response(status: int, where: str) -> bytes:
    reason = _REASONS.get(status, b"Found")
    return b"HTTP/1.1 %d %s\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % (
        status, reason, where.encode("latin-1", "replace"))  # fmt: skip


def own_response(status: int, reason: str) -> bytes:
    """The proxy's own answer on a connection that stays open (`l5d-proxy-error` says why)."""
    text = reason.encode("latin-1", "replace")
    body = text + b"\n"
    return b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\nl5d-proxy-error: %s\r\n" \
        b"content-length: %d\r\n\r\n%s" % (status, _REASONS.get(status, b"Error"), text,
                                             len(body), body)  # fmt: skip
