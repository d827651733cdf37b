"""The capture reader the README-path test trusts to tell TLS from plaintext."""

from __future__ import annotations

import socket
import struct

import pytest
from tests.support.pcap import tcp_streams, tls_records


def _frame(src: str, dst: str, sport: int, dport: int, seq: int, payload: bytes) -> bytes:
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x18, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack(
        ">BBHHHBBH4s4s",
        0x45,
        0,
        total,
        0,
        0,
        64,
        6,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return b"\x00" * 12 + b"\x08\x00" + ip + tcp + payload


def _pcap(*frames: bytes) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for f in frames:
        out += struct.pack("<IIII", 0, 0, len(f), len(f)) + f
    return out


def test_streams_are_reassembled_in_order_once() -> None:
    a, b = "10.244.0.2", "10.244.0.3"
    hello = b"\x16\x03\x01\x00\x02hi"
    data = b"\x17\x03\x03\x00\x03abc"
    pcap = _pcap(
        _frame(a, b, 40000, 8080, 100 + len(hello), data),  # out of order
        _frame(a, b, 40000, 8080, 100, hello),
        _frame(a, b, 40000, 8080, 100, hello),  # a retransmission
        _frame(b, a, 8080, 40000, 7, b"\x15\x03\x03\x00\x02xy"),
        _frame("10.244.0.9", b, 1, 2, 0, b"GET / HTTP/1.1\r\n"),  # another host: ignored
    )
    streams = tcp_streams(pcap, a, b)
    assert streams[(a, 40000, b, 8080)] == hello + data
    assert tls_records(streams[(a, 40000, b, 8080)]) == [(22, 2), (23, 3)]
    assert tls_records(streams[(b, 8080, a, 40000)]) == [(21, 2)]
    assert len(streams) == 2


def test_plaintext_is_not_tls() -> None:
    with pytest.raises(ValueError, match="not a TLS record"):
        tls_records(b"\x16\x03\x01\x00\x01x" + b"GET / HTTP/1.1\r\nHost: echo\r\n\r\n")
