"""Fuzzing the HTTP/2 frame layer (`proxy/h2/codec.py`): untrusted frames, in any pieces.

Inputs are sequences of frames built from valid parts (every frame type, flags, stream ids
near the ones in use, payloads that are valid HPACK or SETTINGS or not), then mutated (bytes
replaced, inserted, dropped) and split at random points. Properties:
- the codec raises nothing but `H2Error`, and when it does, what it sends ends with a GOAWAY;
- it never holds more than one frame of unparsed bytes, nor more open streams than allowed;
- what a reference client (the `h2` library) sends, a random set of requests with bodies and
  trailers, arrives exactly as sent: the same header lists, bodies and endings, per stream.
"""

from __future__ import annotations

import h2.config
import h2.connection
from hypothesis import example, given
from hypothesis import strategies as st

from lacewing.proxy.h2 import frames as fr
from lacewing.proxy.h2.codec import H2Codec, Headers
from lacewing.proxy.h2.frames import H2Error
from lacewing.proxy.h2.settings import H2Limits

LIMITS = H2Limits(max_concurrent_streams=8, max_header_list_size=4096)


class Recorder:
    def __init__(self) -> None:
        self.heads: dict[int, Headers] = {}
        self.bodies: dict[int, bytes] = {}
        self.trailers: dict[int, Headers] = {}
        self.ended: set[int] = set()
        self.resets: dict[int, int] = {}
        self.codec: H2Codec | None = None

    def on_request(self, sid: int, headers: Headers, ended: bool) -> None:
        assert sid not in self.heads
        self.heads[sid] = list(headers)
        if ended:
            self.ended.add(sid)

    def on_response(self, sid: int, headers: Headers, ended: bool) -> None:
        raise AssertionError("a server codec reported a response")

    def on_informational(self, sid: int, headers: Headers) -> None:
        raise AssertionError("a server codec reported a 1xx")

    def on_trailers(self, sid: int, headers: Headers) -> None:
        assert sid in self.heads and sid not in self.ended
        self.trailers[sid] = list(headers)
        self.ended.add(sid)

    def on_data(self, sid: int, data: bytes, flow: int, ended: bool) -> None:
        assert sid in self.heads and sid not in self.ended and flow >= len(data)
        self.bodies[sid] = self.bodies.get(sid, b"") + data
        if ended:
            self.ended.add(sid)
        assert self.codec is not None
        self.codec.acknowledge_received_data(flow, sid)

    def on_reset(self, sid: int, code: int) -> None:
        self.resets[sid] = code

    def on_window(self, sid: int) -> None:
        pass

    def on_settings(self) -> None:
        pass

    def on_goaway(self, code: int, last_sid: int) -> None:
        pass


def server() -> tuple[H2Codec, Recorder]:
    rec = Recorder()
    codec = H2Codec(False, LIMITS, rec, clock=lambda: 0.0)
    rec.codec = codec
    codec.initiate()
    codec.data_to_send()
    return codec, rec


# HPACK blocks: a valid request (static table only), garbage, and empty
GOOD_BLOCK = b"\x82\x86\x84\x41\x03web"  # GET http / :authority web
BLOCKS = [GOOD_BLOCK, b"", b"\xff\xff\xff\xff", b"\x82", b"\x40\x01X\x01y", b"\x3f\xe1\x1f"]
PAYLOADS = {
    0: st.binary(max_size=64),  # DATA
    1: st.sampled_from(BLOCKS),  # HEADERS
    2: st.binary(min_size=5, max_size=5),  # PRIORITY
    3: st.binary(min_size=4, max_size=4),  # RST_STREAM
    4: st.sampled_from([b"", b"\x00\x04\x00\x00\xff\xff", b"\x00\x05\x00\x00\x40\x00", b"x"]),
    5: st.binary(max_size=8),  # PUSH_PROMISE
    6: st.binary(min_size=8, max_size=8),  # PING
    7: st.binary(min_size=8, max_size=12),  # GOAWAY
    8: st.sampled_from([b"\x00\x00\x00\x01", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"]),
    9: st.sampled_from(BLOCKS),  # CONTINUATION
}


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    ftype = draw(st.sampled_from([*PAYLOADS, 0xA]))
    payload = draw(PAYLOADS.get(ftype, st.binary(max_size=8)))
    flags = draw(st.sampled_from([0, 1, 4, 5, 8, 0x20, 0x25, 0xFF]))
    sid = draw(st.sampled_from([0, 1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 0x7FFFFFFF]))
    return fr.frame(ftype, flags, sid, payload)


@st.composite
def connections(draw: st.DrawFn) -> list[bytes]:
    wire = bytearray(fr.PREFACE + fr.settings({}))
    for f in draw(st.lists(frames(), max_size=30)):
        wire += f
    for _ in range(draw(st.integers(0, 3))):  # mutations
        if not wire:
            break
        at = draw(st.integers(0, len(wire) - 1))
        kind = draw(st.sampled_from(["replace", "insert", "drop"]))
        byte = draw(st.integers(0, 255))
        if kind == "replace":
            wire[at] = byte
        elif kind == "insert":
            wire.insert(at, byte)
        else:
            del wire[at]
    cuts = sorted(draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    pieces, last = [], 0
    for cut in [*cuts, len(wire)]:
        pieces.append(bytes(wire[last:cut]))
        last = cut
    return pieces


@given(connections())
@example([fr.PREFACE + fr.settings({}) + fr.frame(1, 0, 1, b"") + fr.frame(9, 0, 1, b"")])
@example([fr.PREFACE + fr.settings({}) + fr.frame(0, 0x8, 1, b"\x05ab")])
def test_the_codec_raises_only_h2error_and_ends_with_goaway(pieces: list[bytes]) -> None:
    codec, _ = server()
    for piece in pieces:
        try:
            codec.receive_data(piece)
        except H2Error:
            out = codec.data_to_send()
            # the last frame queued is a GOAWAY
            pos, last = 0, None
            while pos + 9 <= len(out):
                length, ftype, _, _ = fr.parse_head(out, pos)
                last, pos = ftype, pos + 9 + length
            assert last == fr.FrameType.GOAWAY
            return
        assert codec.buffered <= codec.max_inbound_frame_size + 9 + len(fr.PREFACE)
        assert len(codec.streams) <= LIMITS.max_concurrent_streams
        codec.data_to_send()


HEADER_NAMES = st.sampled_from([b"x-a", b"x-trace-id", b"accept", b"user-agent", b"grpc-timeout"])
HEADER_VALUES = st.binary(max_size=40).filter(
    lambda v: not any(c in v for c in b"\r\n\0") and v.strip() == v  # h2 strips whitespace
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[Headers, list[bytes], Headers | None]:
    path = b"/" + draw(st.binary(max_size=10)).hex().encode()
    method = draw(st.sampled_from([b"GET", b"POST"]))
    head = [(b":method", method), (b":scheme", b"http"), (b":authority", b"web"), (b":path", path)]
    head += draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=5))
    body = draw(st.lists(st.binary(min_size=1, max_size=3000), max_size=4))
    trailers = draw(st.one_of(st.none(), st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES),
                                                  min_size=1, max_size=3)))  # fmt: skip
    return head, body, trailers


@given(st.lists(requests(), min_size=1, max_size=6), st.integers(1, 4000))
def test_what_a_reference_client_sends_arrives_as_sent(
    reqs: list[tuple[Headers, list[bytes], Headers | None]], piece: int
) -> None:
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_connection()
    codec, rec = server()
    sent: dict[int, tuple[Headers, list[bytes], Headers | None]] = {}
    for head, body, trailers in reqs:
        sid = client.get_next_available_stream_id()
        sent[sid] = (head, body, trailers)
        client.send_headers(sid, head, end_stream=not body and trailers is None)
        for i, chunk in enumerate(body):
            client.send_data(sid, chunk, end_stream=i == len(body) - 1 and trailers is None)
        if trailers is not None:
            client.send_headers(sid, trailers, end_stream=True)
    data = client.data_to_send()
    for i in range(0, len(data), piece):
        codec.receive_data(data[i : i + piece])
    client.receive_data(codec.data_to_send())  # our SETTINGS ack and window updates: valid
    assert rec.resets == {}
    for sid, (head, body, trailers) in sent.items():
        assert rec.heads[sid] == list(head)
        assert rec.bodies.get(sid, b"") == b"".join(body)
        assert rec.trailers.get(sid) == (list(trailers) if trailers is not None else None)
        assert sid in rec.ended


HEADER_LISTS = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from([b"x-a", b"x-b", b"date", b"server", b"x-long"]),
            st.sampled_from([b"1", b"2", b"nginx", b"v" * 300, b"w" * 3000]),
        ),
        max_size=4,
    ),
    min_size=1,
    max_size=40,
)


@given(HEADER_LISTS, st.lists(st.sampled_from([0, 256, 1024, 4096]), max_size=3))
def test_the_hpack_memo_decodes_and_encodes_as_hpack_does(
    lists: list[Headers], sizes: list[int]
) -> None:
    """Lists sent again and again (as proxies and nginx do), table size changes among them:
    our memoized decoder reads a reference encoder's blocks as sent, and a reference decoder
    reads our memoized encoder's blocks as given (the decoder's own tuples, found by
    identity, or lists); the memo stays within its bounds."""
    from hpack import Decoder, Encoder

    from lacewing.proxy.h2 import hblock

    ref_enc, ref_dec = Encoder(), Decoder(max_header_list_size=1 << 20)
    ours_dec, ours_enc = hblock.BlockDecoder(1 << 20), hblock.BlockEncoder()
    sizes = list(sizes)
    for i, headers in enumerate(lists * 3):  # every list three times at least
        if sizes and i % 17 == 16:
            size = sizes.pop()
            ref_enc.header_table_size = size
            ours_enc.set_table_size(size)
            ref_dec.header_table_size = 4096
        block = ref_enc.encode(headers, huffman=i % 2 == 0)
        decoded = ours_dec.decode(block, None)[0]
        assert list(decoded) == headers
        # the decoded tuple passed on as it is (what the proxy does: found by identity), or
        # a list of the same fields (found by content): the same blocks either way
        given = decoded if i % 3 else headers
        assert ref_dec.decode(ours_enc.encode(given), raw=True) == headers
        for memo in (ours_dec._memo, ours_enc._memo):
            assert memo._bytes <= hblock._MEMO_BYTES
            assert memo._state_bytes <= hblock._STATE_BYTES + 4096 + 64 * 8 + 64
