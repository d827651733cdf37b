"""SO_ORIGINAL_DST: where a connection that iptables REDIRECTed was originally going.

The kernel answers `getsockopt(SOL_IP, SO_ORIGINAL_DST=80)` with a `struct sockaddr_in`
(IPv4) and `getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST=80)` with a `struct sockaddr_in6`;
`decode_sockaddr` turns either into an `Addr`. When the connection was not redirected the
kernel fails with ENOENT (no conntrack entry) or, with conntrack loaded, returns the listener's
own address; both mean "no original destination" (`None`), because forwarding to ourselves
would loop.
"""

from __future__ import annotations

import socket
import struct

from lacewing.proxy.config import Addr

__all__ = ["SO_ORIGINAL_DST", "decode_sockaddr", "original_dst"]

SO_ORIGINAL_DST = 80
SOL_IPV6 = 41


def decode_sockaddr(raw: bytes) -> Addr:
    family = struct.unpack_from("=H", raw)[0]
    port = struct.unpack_from("!H", raw, 2)[0]
    if family == socket.AF_INET:
        return Addr(socket.inet_ntop(socket.AF_INET, raw[4:8]), port)
    if family == socket.AF_INET6:
        return Addr(socket.inet_ntop(socket.AF_INET6, raw[8:24]), port)
    raise ValueError(f"unknown address family {family}")


def original_dst(sock: socket.socket) -> Addr | None:
    try:
        if sock.family == socket.AF_INET6:
            raw = sock.getsockopt(SOL_IPV6, SO_ORIGINAL_DST, 28)
        else:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        dst = decode_sockaddr(raw)
    except (OSError, ValueError):
        return None
    local = sock.getsockname()
    if dst.host == local[0] and dst.port == local[1]:
        return None
    return dst
