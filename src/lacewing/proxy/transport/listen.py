"""Listening sockets for IP-literal addresses, bound here instead of by the event loop.

`loop.create_server(factory, host, port)` resolves `host` with getaddrinfo even when it is an
address, and uvloop does that on libuv's thread pool: the first listener starts four
`libuv-worker` threads and imports the `idna` codec (with `unicodedata` and `stringprep`),
about 0.4 MB of RSS a sidecar carries for its whole life to resolve `127.0.0.1` once
(measured: docs/benchmark.md, "Levers measured"). The proxy's listen addresses are IP
literals (`LACEWING_PROXY_*_LISTEN_ADDR`), so `listen_socket()` binds them itself as asyncio
would (SO_REUSEADDR; IPV6_V6ONLY on IPv6; non-blocking) and the servers get `sock=`. A host
name returns None: the caller passes it to the loop, which resolves it as before.
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["listen_socket"]


def listen_socket(host: str, port: int, backlog: int = 100) -> socket.socket | None:
    """A bound, listening, non-blocking TCP socket on `host:port`; None if `host` is a name."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
