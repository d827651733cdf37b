"""The HTTP/1 <-> HTTP/2 head mappings of `proxy.origproto`, both ways."""

from __future__ import annotations

import pytest
from httptools import HttpRequestParser, HttpResponseParser

from lacewing.proxy.origproto import (
    LAST_CHUNK,
    ORIG_PROTO,
    Framing,
    Untranslatable,
    chunk,
    orig_version,
    request_fields,
    request_head,
    response_fields,
    response_head,
    translatable,
)

AUTH = b"10.0.0.9:8080"


def _fields(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]],
            version: str = "1.1") -> list[tuple[bytes, bytes]]:  # fmt: skip
    return request_fields(method, target, version, headers, default_authority=AUTH)


def test_request_maps_to_pseudo_headers_and_names_its_version() -> None:
    fields = _fields(b"POST", b"/api?x=1", [(b"Host", b"web.default:80"),
                     (b"Content-Length", b"5"), (b"X-Trace", b" abc ")])  # fmt: skip
    assert fields[:4] == [(b":method", b"POST"), (b":scheme", b"http"),
                          (b":authority", b"web.default:80"), (b":path", b"/api?x=1")]  # fmt: skip
    assert (b"content-length", b"5") in fields and (b"x-trace", b"abc") in fields
    assert fields[-1] == (ORIG_PROTO, b"HTTP/1.1")
    assert not any(name == b"host" for name, _ in fields)


def test_http10_without_host_takes_the_destination_as_authority() -> None:
    fields = _fields(b"GET", b"/", [], "1.0")
    assert (b":authority", AUTH) in fields and fields[-1] == (ORIG_PROTO, b"HTTP/1.0")


def test_absolute_form_target_gives_scheme_authority_and_path() -> None:
    fields = _fields(b"GET", b"http://api.example:81", [(b"Host", b"other")])
    assert fields[1:4] == [(b":scheme", b"http"), (b":authority", b"api.example:81"),
                           (b":path", b"/")]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "kept"),
    [
        ([(b"Connection", b"keep-alive, X-Drop"), (b"X-Drop", b"1"), (b"X-Keep", b"2")],
         [(b"x-keep", b"2")]),
        ([(b"Transfer-Encoding", b"gzip, chunked")], []),
        ([(b"TE", b"gzip")], []),
        ([(b"TE", b"trailers, deflate")], [(b"te", b"trailers")]),
        ([(b"Keep-Alive", b"timeout=5"), (b"Proxy-Connection", b"x"), (b"Upgrade", b"h2c"),
          (b"Trailer", b"x-sum")], []),
        ([(b"Connection", b"te"), (b"TE", b"trailers")], []),
    ],
)  # fmt: skip
def test_request_drops_what_h2_forbids(
    headers: list[tuple[bytes, bytes]], kept: list[tuple[bytes, bytes]]
) -> None:
    fields = _fields(b"GET", b"/", [(b"Host", b"a"), *headers])
    assert fields[4:-1] == kept


def test_request_refusals() -> None:
    with pytest.raises(Untranslatable, match="more than one Host"):
        _fields(b"GET", b"/", [(b"Host", b"a"), (b"Host", b"b")])
    with pytest.raises(Untranslatable, match="no path"):
        _fields(b"GET", b"nopath", [(b"Host", b"a")])
    assert _fields(b"OPTIONS", b"*", [(b"Host", b"a")])[3] == (b":path", b"*")
    assert not translatable(b"CONNECT", False) and not translatable(b"GET", True)
    assert translatable(b"GET", False)


def _parse_response(data: bytes) -> tuple[int, dict[bytes, bytes], bytes, bool]:
    class Sink:
        def __init__(self) -> None:
            self.headers: dict[bytes, bytes] = {}
            self.body = b""
            self.done = False

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers[name.lower()] = value

        def on_body(self, body: bytes) -> None:
            self.body += body

        def on_message_complete(self) -> None:
            self.done = True

    sink = Sink()
    parser = HttpResponseParser(sink)
    parser.feed_data(data)
    return parser.get_status_code(), sink.headers, sink.body, sink.done


def test_response_with_length_keeps_it_and_stays_alive() -> None:
    head = response_head([(b":status", b"200"), (b"content-length", b"2"), (b"x-a", b"1")],
                         http10=False, keep_alive=True, is_head=False, ended=False)  # fmt: skip
    assert head.framing is Framing.LENGTH and not head.close
    status, headers, body, done = _parse_response(head.head + b"ok")
    assert (status, body, done) == (200, b"ok", True)
    assert headers[b"x-a"] == b"1" and b"connection" not in headers


def test_response_without_length_is_chunked_for_http11() -> None:
    head = response_head([(b":status", b"200")], http10=False, keep_alive=True, is_head=False,
                         ended=False)  # fmt: skip
    assert head.framing is Framing.CHUNKED and not head.close
    data = head.head + chunk(b"hello ") + chunk(b"world") + LAST_CHUNK
    status, _, body, done = _parse_response(data)
    assert (status, body, done) == (200, b"hello world", True)


def test_response_without_length_closes_for_http10() -> None:
    head = response_head([(b":status", b"200")], http10=True, keep_alive=True, is_head=False,
                         ended=False)  # fmt: skip
    assert head.framing is Framing.CLOSE and head.close
    assert b"connection: close\r\n" in head.head and b"chunked" not in head.head


def test_http10_keep_alive_response_says_so() -> None:
    head = response_head([(b":status", b"200"), (b"content-length", b"0")], http10=True,
                         keep_alive=True, is_head=False, ended=True)  # fmt: skip
    assert b"connection: keep-alive\r\n" in head.head and not head.close


@pytest.mark.parametrize(("status", "is_head"), [(204, False), (304, False), (200, True)])
def test_bodiless_responses_get_no_framing(status: int, is_head: bool) -> None:
    fields = [(b":status", b"%d" % status)]
    if is_head:
        fields.append((b"content-length", b"1234"))  # what a GET would have had: kept
    head = response_head(fields, http10=False, keep_alive=True, is_head=is_head, ended=True)
    assert head.framing is Framing.NONE and not head.close
    assert b"transfer-encoding" not in head.head
    assert (b"content-length: 1234" in head.head) == is_head


def test_response_that_ended_with_its_head_has_an_empty_body() -> None:
    head = response_head([(b":status", b"200")], http10=False, keep_alive=False,
                         is_head=False, ended=True)  # fmt: skip
    assert head.framing is Framing.NONE and head.close
    assert b"content-length: 0\r\n" in head.head and b"connection: close\r\n" in head.head


def test_response_without_status_is_a_bad_gateway() -> None:
    with pytest.raises(Untranslatable) as info:
        response_head([(b"x", b"y")], http10=False, keep_alive=True, is_head=False, ended=True)
    assert info.value.status == 502


def test_orig_version() -> None:
    assert orig_version([(b":method", b"GET"), (ORIG_PROTO, b"HTTP/1.1")]) == "1.1"
    assert orig_version([(ORIG_PROTO, b"HTTP/1.0")]) == "1.0"
    assert orig_version([(b":method", b"GET")]) is None
    with pytest.raises(Untranslatable, match="unknown"):
        orig_version([(ORIG_PROTO, b"HTTP/2")])


def _parse_request(data: bytes) -> tuple[bytes, bytes, str, dict[bytes, bytes], bytes]:
    class Sink:
        url = b""
        body = b""

        def __init__(self) -> None:
            self.headers: dict[bytes, bytes] = {}

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers[name.lower()] = value

        def on_body(self, body: bytes) -> None:
            self.body += body

    sink = Sink()
    parser = HttpRequestParser(sink)
    parser.feed_data(data)
    return parser.get_method(), sink.url, parser.get_http_version(), sink.headers, sink.body


def test_round_trip_request_through_h2_back_to_http1() -> None:
    sent = [(b"Host", b"web:80"), (b"Content-Length", b"4"), (b"Connection", b"close")]
    fields = _fields(b"PUT", b"/x", sent)
    version = orig_version(fields)
    assert version == "1.1"
    head, chunked = request_head(fields, version, ended=False)
    assert not chunked
    method, url, ver, headers, body = _parse_request(head + b"data")
    assert (method, url, ver, body) == (b"PUT", b"/x", "1.1", b"data")
    assert headers[b"host"] == b"web:80" and ORIG_PROTO not in headers
    assert b"connection" not in headers


def test_request_head_chunks_a_body_of_unknown_length() -> None:
    fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"a"),
              (b":path", b"/"), (ORIG_PROTO, b"HTTP/1.1")]  # fmt: skip
    head, chunked = request_head(fields, "1.1", ended=False)
    assert chunked
    _, _, _, _, body = _parse_request(head + chunk(b"abc") + LAST_CHUNK)
    assert body == b"abc"
    head, chunked = request_head(fields, "1.1", ended=True)
    assert not chunked and b"transfer-encoding" not in head


def test_http10_request_stays_http10_and_kept_alive() -> None:
    fields = _fields(b"GET", b"/old", [], "1.0")
    head, chunked = request_head(fields, "1.0", ended=True)
    assert head.startswith(b"GET /old HTTP/1.0\r\n") and not chunked
    assert b"connection: keep-alive\r\n" in head and b"host: 10.0.0.9:8080\r\n" in head
    with pytest.raises(Untranslatable, match="Content-Length"):
        request_head([(b":method", b"POST"), (b":path", b"/")], "1.0", ended=False)


def test_response_fields_drop_hop_by_hop() -> None:
    fields = response_fields(
        200,
        [
            (b"Content-Length", b"3"),
            (b"Connection", b"keep-alive"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Set-Cookie", b"a"),
        ],
    )
    assert fields == [(b":status", b"200"), (b"content-length", b"3"), (b"set-cookie", b"a")]
