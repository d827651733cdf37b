from __future__ import annotations

import pytest

from lacewing.proxy.detect import H2_PREFACE, Protocol, detect

CLIENT_HELLO = bytes.fromhex("160301020001")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (b"GET / HTTP/1.1\r\n", Protocol.HTTP1),
        (b"POST /x HTTP/1.0\r\n", Protocol.HTTP1),
        (b"DELETE ", Protocol.HTTP1),
        (H2_PREFACE + b"\x00\x00", Protocol.HTTP2),
        (CLIENT_HELLO, Protocol.TLS),
        (b"\x16\x03\x03", Protocol.TLS),
        (b"SSH-2.0-OpenSSH\r\n", Protocol.OPAQUE),
        (b"\x00\x01\x02", Protocol.OPAQUE),
        (b"get / HTTP/1.1\r\n", Protocol.OPAQUE),  # methods are case-sensitive
        (b"\x16\x05", Protocol.OPAQUE),
    ],
)
def test_decides(prefix: bytes, expected: Protocol) -> None:
    assert detect(prefix) is expected


@pytest.mark.parametrize(
    "prefix", [b"", b"G", b"GE", b"GET", b"PRI * HTTP/2", b"\x16", b"\x16\x03"]
)
def test_waits_while_ambiguous(prefix: bytes) -> None:
    assert detect(prefix) is None


@pytest.mark.parametrize("prefix", [b"", b"GE", b"PRI * HTTP/2", b"\x16\x03"])
def test_final_always_decides_opaque_for_ambiguous(prefix: bytes) -> None:
    assert detect(prefix, final=True) is Protocol.OPAQUE
