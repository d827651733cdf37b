"""Listeners on IP literals are bound without the event loop's getaddrinfo."""

from __future__ import annotations

import socket

import pytest

from lacewing.proxy.transport import listen_socket


def test_an_ipv4_literal_gets_a_listening_non_blocking_socket() -> None:
    sock = listen_socket("127.0.0.1", 0, backlog=8)
    assert sock is not None
    with sock:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert not sock.getblocking()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        with socket.create_connection((host, port), timeout=2):
            pass


def test_an_ipv6_literal_listens_on_ipv6_only() -> None:
    try:
        sock = listen_socket("::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    assert sock is not None
    with sock:
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1


def test_a_host_name_is_left_to_the_loop() -> None:
    assert listen_socket("localhost", 0) is None


def test_an_address_in_use_raises_and_leaks_no_socket() -> None:
    first = listen_socket("127.0.0.1", 0)
    assert first is not None
    with first:
        port = first.getsockname()[1]
        with pytest.raises(OSError):
            # SO_REUSEADDR does not let two sockets listen on one port
            listen_socket("127.0.0.1", port)
