from __future__ import annotations

import pytest

from lacewing.proxy.detect import H2_PREFACE, Protocol, detect, detect_opaque

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


@pytest.mark.parametrize(
    ("prefix", "final", "expected"),
    [
        (b"\x16\x03\x01\x02\x00", False, Protocol.TLS),  # a meshed client's ClientHello
        (b"\x16", False, None),  # could still be TLS: wait
        (b"\x16\x03", False, None),
        (b"\x16", True, Protocol.OPAQUE),
        (b"GET / HTTP/1.1\r\n", False, Protocol.OPAQUE),  # an opaque port never becomes HTTP
        (H2_PREFACE, False, Protocol.OPAQUE),
        (b"", True, Protocol.OPAQUE),  # silence: a server-speaks-first protocol
    ],
)
def test_an_opaque_port_tells_only_mesh_tls_apart(
    prefix: bytes, final: bool, expected: Protocol | None
) -> None:
    assert detect_opaque(prefix, final=final) is expected
