"""The ClientHello parser on real hellos from Python's ssl module, hand-built ones, and garbage.

Real hellos come from `ssl.MemoryBIO`: a client `SSLObject` writes its first flight into the
outgoing BIO when `do_handshake()` is called, before any server exists.
"""

from __future__ import annotations

import ssl
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lacewing.proxy.identity.clienthello import (
    MAX_BUFFER,
    MAX_HELLO,
    MAX_RECORDS,
    NEED_MORE,
    ClientHello,
    NeedMore,
    NotTls,
    parse_client_hello,
)

MESH_NAME = "api.shop.serviceaccount.identity.lacewing.cluster.local"


def real_hello(
    server_hostname: str | None = None,
    alpn: list[str] | None = None,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> bytes:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = maximum
    if alpn:
        context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def record(payload: bytes, content_type: int = 22, version: bytes = b"\x03\x01") -> bytes:
    return bytes([content_type]) + version + struct.pack("!H", len(payload)) + payload


def vec(length_size: int, data: bytes) -> bytes:
    return len(data).to_bytes(length_size, "big") + data


def ext(kind: int, data: bytes) -> bytes:
    return struct.pack("!H", kind) + vec(2, data)


def sni_ext(*names: bytes, name_type: int = 0) -> bytes:
    return ext(0, vec(2, b"".join(bytes([name_type]) + vec(2, n) for n in names)))


def alpn_ext(*protocols: bytes) -> bytes:
    return ext(16, vec(2, b"".join(vec(1, p) for p in protocols)))


def hello_body(
    extensions: bytes | None = b"",
    *,
    version: bytes = b"\x03\x03",
    session_id: bytes = b"\x00" * 32,
    suites: bytes = b"\x13\x01\x13\x02",
    compression: bytes = b"\x00",
) -> bytes:
    body = version + b"\x11" * 32 + vec(1, session_id) + vec(2, suites) + vec(1, compression)
    return body if extensions is None else body + vec(2, extensions)


def handshake(body: bytes, msg_type: int = 1) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def fragment(message: bytes, sizes: list[int]) -> bytes:
    """`message` as handshake records of the given payload sizes (the last takes the rest)."""
    out, offset = b"", 0
    for size in sizes:
        if offset >= len(message):
            break
        out += record(message[offset : offset + size])
        offset += size
    if offset < len(message):
        out += record(message[offset:])
    return out


def test_a_real_hello_with_server_name_and_alpn() -> None:
    data = real_hello(MESH_NAME, ["http/1.1", "lacewing.io/opaque"])
    assert parse_client_hello(data) == ClientHello(MESH_NAME, ("http/1.1", "lacewing.io/opaque"))


def test_a_real_hello_without_server_name_or_alpn() -> None:
    assert parse_client_hello(real_hello()) == ClientHello(None, ())


def test_a_real_tls12_hello_is_read_the_same() -> None:
    data = real_hello("webhook.lacewing.svc", ["h2"], maximum=ssl.TLSVersion.TLSv1_2)
    assert parse_client_hello(data) == ClientHello("webhook.lacewing.svc", ("h2",))


def test_python_sends_no_server_name_for_an_ip_address() -> None:
    assert parse_client_hello(real_hello("10.1.2.3")) == ClientHello(None, ())


def test_every_proper_prefix_of_a_real_hello_needs_more() -> None:
    data = real_hello(MESH_NAME, ["http/1.1"])
    for cut in range(len(data)):
        assert parse_client_hello(data[:cut]) is NEED_MORE, cut
    assert parse_client_hello(data) == ClientHello(MESH_NAME, ("http/1.1",))


def test_bytes_after_the_hello_are_not_looked_at() -> None:
    data = real_hello(MESH_NAME) + record(b"\x01\x02", content_type=23) + b"\xff" * 100
    assert parse_client_hello(data) == ClientHello(MESH_NAME, ())


def test_a_hello_split_over_records_of_one_byte_up_to_the_bound() -> None:
    message = handshake(hello_body(sni_ext(b"a.b")))
    # MAX_RECORDS one-byte records hold only the first MAX_RECORDS bytes of the message
    assert len(message) > MAX_RECORDS
    many = fragment(message, [1] * (MAX_RECORDS - 1))
    assert parse_client_hello(many) == ClientHello("a.b", ())
    too_many = fragment(message, [1] * MAX_RECORDS)
    assert isinstance(parse_client_hello(too_many), NotTls)


@given(sizes=st.lists(st.integers(1, 200), max_size=MAX_RECORDS - 1), data=st.data())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_fragmentation_and_truncation_of_a_real_hello(
    sizes: list[int], data: st.DataObject
) -> None:
    whole = real_hello(MESH_NAME, ["http/1.1", "lacewing.io/opaque"])
    message = whole[5:]  # the one record Python writes -> its handshake message
    stream = fragment(message, sizes)
    expected = ClientHello(MESH_NAME, ("http/1.1", "lacewing.io/opaque"))
    assert parse_client_hello(stream) == expected
    cut = data.draw(st.integers(0, len(stream) - 1))
    assert parse_client_hello(stream[:cut]) is NEED_MORE


@given(st.binary(max_size=600))
@settings(max_examples=2000)
def test_garbage_never_raises(data: bytes) -> None:
    result = parse_client_hello(data)
    assert isinstance(result, NeedMore | NotTls | ClientHello)


@given(st.binary(max_size=400))
@settings(max_examples=2000)
def test_garbage_after_a_handshake_record_header_never_raises(tail: bytes) -> None:
    # start like TLS so the fuzzing reaches the structure reader, not only the record check
    data = b"\x16\x03\x01" + struct.pack("!H", len(tail)) + tail
    result = parse_client_hello(data)
    assert isinstance(result, NeedMore | NotTls | ClientHello)


@given(st.data())
@settings(max_examples=1000)
def test_corrupting_a_real_hello_never_raises(data: st.DataObject) -> None:
    hello = bytearray(real_hello(MESH_NAME, ["h2", "http/1.1"]))
    for _ in range(data.draw(st.integers(1, 8))):
        hello[data.draw(st.integers(0, len(hello) - 1))] = data.draw(st.integers(0, 255))
    result = parse_client_hello(bytes(hello))
    assert isinstance(result, NeedMore | NotTls | ClientHello)


@given(
    announced=st.integers(0, MAX_HELLO),
    sizes=st.lists(st.integers(1, 1 << 14), min_size=1, max_size=40),
)
@settings(max_examples=200)
def test_no_input_past_the_bound_needs_more(announced: int, sizes: list[int]) -> None:
    # handshake records of any sizes carrying a ClientHello that announces any allowed length
    message = b"\x01" + announced.to_bytes(3, "big") + b"\x00" * (MAX_BUFFER + 1)
    stream, offset, i = b"", 0, 0
    while len(stream) <= MAX_BUFFER:
        size = sizes[i % len(sizes)]
        stream += record(message[offset : offset + size])
        offset, i = offset + size, i + 1
    assert not isinstance(parse_client_hello(stream), NeedMore)


def test_the_longest_waiting_input_stays_under_the_bound() -> None:
    # a maximal hello in maximal fragments: the parser may wait for all of it, no more
    message = handshake(hello_body(ext(0xFFFF, b"\x00" * (MAX_HELLO - 200))))
    assert len(message) <= MAX_HELLO + 4
    stream = fragment(message, [len(message) // MAX_RECORDS + 1] * MAX_RECORDS)
    assert len(stream) <= MAX_BUFFER
    assert parse_client_hello(stream[:-1]) is NEED_MORE
    assert parse_client_hello(stream) == ClientHello(None, ())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x17\x03\x03\x00\x05hello", "record type 23"),
        (b"\x16\x02\x00", "record version 2.x"),
        (b"\x16\x03\x01\x00\x00", "record length 0"),
        (b"\x16\x03\x01\x40\x01", "record length 16385"),
        (record(handshake(b"\x03\x03", msg_type=2)), "type 2 is not a ClientHello"),
        (record(b"\x01\x00\x40\x01"), "larger than"),
        (record(handshake(hello_body(version=b"\x02\x00"))), "version 2.x"),
        (record(handshake(hello_body(session_id=b"\x00" * 33))), "longer than 32"),
        (record(handshake(hello_body(suites=b"\x13"))), "odd"),
        (record(handshake(hello_body(suites=b""))), "odd"),
        (record(handshake(hello_body(compression=b""))), "compression_methods is empty"),
        (record(handshake(hello_body(sni_ext(b"a") + sni_ext(b"b")))), "appears twice"),
        (record(handshake(hello_body(sni_ext(b"a", b"b")))), "more than one host_name"),
        (record(handshake(hello_body(sni_ext(b"caf\xc3\xa9")))), "printable ASCII"),
        (record(handshake(hello_body(sni_ext(b"a\nb")))), "printable ASCII"),
        (record(handshake(hello_body(sni_ext(b"")))), "printable ASCII"),
        (record(handshake(hello_body(alpn_ext(b"")))), "empty ALPN"),
        (record(handshake(hello_body(ext(16, vec(2, b""))))), "empty protocol_name_list"),
        (record(handshake(hello_body(ext(0, vec(2, b"\x00\x00\x05ab"))))), "overruns"),
        (record(handshake(hello_body(ext(0, vec(2, b"") + b"x")))), "stray bytes"),
        (record(handshake(hello_body() + b"\x00")), "stray bytes"),
        (record(handshake(hello_body(b"\x00\x00\x00\x09"))), "overruns"),
        (record(handshake(hello_body(None) + b"\x00\x00" + b"junk")), "stray bytes"),
    ],
)
def test_malformed_input_is_not_tls_with_a_reason(data: bytes, reason: str) -> None:
    result = parse_client_hello(data)
    assert isinstance(result, NotTls), result
    assert reason in result.reason


def test_a_hello_without_extensions_has_no_server_name() -> None:
    assert parse_client_hello(record(handshake(hello_body(None)))) == ClientHello(None, ())


def test_other_name_types_are_skipped_and_alpn_is_read_in_order() -> None:
    extensions = ext(10, b"\x00\x02\x00\x1d") + sni_ext(b"x", name_type=7) + alpn_ext(b"b", b"a")
    assert parse_client_hello(record(handshake(hello_body(extensions)))) == ClientHello(
        None, ("b", "a")
    )


def test_server_name_case_is_kept() -> None:
    data = record(handshake(hello_body(sni_ext(b"API.Shop"))))
    assert parse_client_hello(data) == ClientHello("API.Shop", ())


def test_a_partial_record_holding_the_whole_message_is_enough() -> None:
    message = handshake(hello_body(sni_ext(b"a.b")))
    # one record announcing more than the message: the rest of it has not arrived yet
    data = b"\x16\x03\x01" + struct.pack("!H", len(message) + 50) + message
    assert parse_client_hello(data) == ClientHello("a.b", ())


def test_a_second_message_in_the_hellos_record_is_not_looked_at() -> None:
    message = handshake(hello_body(sni_ext(b"a.b")))
    data = record(message + handshake(b"\xff" * 9, msg_type=20))
    assert parse_client_hello(data) == ClientHello("a.b", ())
