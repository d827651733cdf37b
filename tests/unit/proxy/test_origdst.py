from __future__ import annotations

import socket
import struct

from lacewing.proxy.config import Addr
from lacewing.proxy.transport import decode_sockaddr, original_dst


def test_decodes_ipv4_sockaddr() -> None:
    raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 8080)
    raw += socket.inet_aton("10.1.2.3") + b"\0" * 8
    assert decode_sockaddr(raw) == Addr("10.1.2.3", 8080)


def test_decodes_ipv6_sockaddr() -> None:
    raw = struct.pack("=H", socket.AF_INET6) + struct.pack("!H", 443) + b"\0" * 4
    raw += socket.inet_pton(socket.AF_INET6, "fd00::7") + b"\0" * 4
    assert decode_sockaddr(raw) == Addr("fd00::7", 443)


def test_connection_that_was_not_redirected_has_no_original_dst() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        with client, accepted:
            assert original_dst(accepted) is None
