"""A lean sans-I/O HTTP/2 connection (RFC 9113): frames in, calls on a handler out, bytes to
send in a buffer. Only what a proxy needs: no server push, no priorities (PRIORITY is read
and ignored), no content-length bookkeeping (bodies pass through as they came).

    receive_data(bytes) -> handler.on_request / on_response / on_informational /
                           on_trailers / on_data / on_reset / on_window / on_settings /
                           on_goaway (one call per event, in wire order)
    send_headers / send_data / end_stream / reset_stream / acknowledge_received_data /
    ping / close_connection -> data_to_send()

Connection: the server side expects the client preface and, from both sides, a SETTINGS
frame first; our SETTINGS go out at once (`initiate`), with a WINDOW_UPDATE raising the
connection window to what `H2Limits` grants. SETTINGS are acknowledged, PINGs answered.

Streams: a `_Stream` per open stream (`streams`), created by a request HEADERS (server) or
by `send_headers` on a new id (client), and dropped when both ends are closed or it is reset.
Frames on a stream we have closed are read (HEADERS still decoded, so HPACK stays in step,
DATA counted against the connection window and given back) and otherwise ignored, since the
peer may have sent them before it saw our end.

Flow control, both directions: `send_window(sid)` is what may be sent now (stream and
connection windows, from the peer's SETTINGS and WINDOW_UPDATEs); `send_data` spends it. What
the peer sends is counted against the windows we granted: beyond them is FLOW_CONTROL_ERROR.
`acknowledge_received_data` gives bytes back once the proxy has passed them on, as one
WINDOW_UPDATE when half a window is due (so small bodies cost no frame each).

Bad input: a connection error raises `H2Error` after queueing GOAWAY with its code (the
caller sends it and closes); a stream error queues RST_STREAM and tells the handler
`on_reset`. Floods the RFC leaves to implementations (section 10.5) are bounded: more than
`max_control_per_s` SETTINGS or PINGs a second, a header block spread over more than
`_MAX_CONTINUATIONS` frames or longer than the header list we accept: ENHANCE_YOUR_CALM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from hpack import HPACKError, OversizedHeaderListError

from lacewing.proxy.h2 import frames as fr
from lacewing.proxy.h2.frames import ErrorCodes, FrameType, H2Error, Setting
from lacewing.proxy.h2.hblock import (
    BlockDecoder,
    BlockEncoder,
    check_request,
    check_response,
    check_trailers,
)
from lacewing.proxy.h2.settings import H2Limits

__all__ = ["H2Codec", "H2Handler"]

Headers = Sequence[tuple[bytes, bytes]]  # what the handler gets is a tuple (`hblock`)
_MAX_CONTINUATIONS = 32
_SETTINGS = int(FrameType.SETTINGS)
_DATA = int(FrameType.DATA)
_HEADERS = int(FrameType.HEADERS)
_CONTINUATION = int(FrameType.CONTINUATION)
_END_STREAM = fr.END_STREAM
_END_HEADERS = fr.END_HEADERS
_PADDED = fr.PADDED
_END_BLOCK = fr.END_HEADERS | fr.END_STREAM
_BLOCK_FLAGS = fr.PADDED | fr.PRIORITY_FLAG | fr.END_HEADERS
_HEAD_PACK = fr.HEAD.pack
_HEAD_UNPACK = fr.HEAD.unpack_from


class H2Handler(Protocol):
    def on_request(self, sid: int, headers: Headers, ended: bool) -> None: ...
    def on_response(self, sid: int, headers: Headers, ended: bool) -> None: ...
    def on_informational(self, sid: int, headers: Headers) -> None: ...
    def on_trailers(self, sid: int, headers: Headers) -> None: ...
    def on_data(self, sid: int, data: bytes, flow: int, ended: bool) -> None: ...
    def on_reset(self, sid: int, code: int) -> None: ...
    def on_window(self, sid: int) -> None: ...
    def on_settings(self) -> None: ...
    def on_goaway(self, code: int, last_sid: int) -> None: ...


class _Stream:
    __slots__ = ("head", "local_closed", "recv_due", "recv_window", "remote_closed", "window")

    def __init__(self, window: int, recv_window: int) -> None:
        self.window = window  # what we may still send
        self.recv_window = recv_window  # what the peer may still send
        self.recv_due = 0  # passed on, not yet given back
        self.head = False  # a final response head was received (client side)
        self.local_closed = False
        self.remote_closed = False


class H2Codec:
    def __init__(self, client_side: bool, limits: H2Limits, handler: H2Handler,
                 clock: Callable[[], float]) -> None:  # fmt: skip
        self.client_side = client_side
        self.limits = limits
        self.handler = handler
        self.clock = clock
        self.streams: dict[int, _Stream] = {}
        self._stream_window = limits.stream_window
        self._conn_update_at = limits.connection_window // 2  # WINDOW_UPDATE at half the window
        self.out = bytearray()
        self._buf = bytearray()
        self._preface = not client_side  # still expecting the client's preface
        self._settings_seen = False
        self._plain = False  # SETTINGS seen and no header block pending: the fast path's cue
        self._decoder = BlockDecoder(limits.max_header_list_size)
        self._encoder = BlockEncoder()
        # peer's settings
        # until its SETTINGS say otherwise (RFC 9113 leaves it unlimited; nghttp2 assumes 100)
        self.remote_max_concurrent_streams = 100
        self.max_outbound_frame_size = fr.DEFAULT_FRAME_SIZE
        self._remote_initial_window = fr.DEFAULT_WINDOW
        self.window = fr.DEFAULT_WINDOW  # connection send window
        # what we grant
        self._recv_window = limits.connection_window
        self._recv_due = 0
        self._next_sid = 1
        self.highest_inbound_stream_id = 0
        self.goaway_sent = False
        self._cont: tuple[int, int, list[bytes], int] | None = None  # sid, flags, parts, size
        self._control, self._control_since = 0, float("-inf")
        self.max_inbound_frame_size = fr.DEFAULT_FRAME_SIZE
        self._dispatch: tuple[Callable[[int, int, bytes], None], ...] = (
            self._data,
            self._headers,
            self._priority,
            self._rst,
            self._settings,
            self._push_promise,
            self._ping,
            self._goaway,
            self._window_update,
            self._continuation,
        )  # fmt: skip, by frame type

    # -- start and output ------------------------------------------------------------------
    def initiate(self) -> None:
        if self.client_side:
            self.out += fr.PREFACE
        self.out += fr.settings({
            Setting.ENABLE_PUSH: 0,
            Setting.MAX_CONCURRENT_STREAMS: self.limits.max_concurrent_streams,
            Setting.INITIAL_WINDOW_SIZE: self.limits.stream_window,
            Setting.MAX_HEADER_LIST_SIZE: self.limits.max_header_list_size,
        })  # fmt: skip
        if self.limits.connection_window > fr.DEFAULT_WINDOW:
            self.out += fr.window_update(0, self.limits.connection_window - fr.DEFAULT_WINDOW)

    def data_to_send(self) -> bytes:
        if not self.out:
            return b""
        data = bytes(self.out)
        self.out.clear()
        return data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed (part of a frame)."""
        return len(self._buf)

    # -- sending ---------------------------------------------------------------------------
    def get_next_available_stream_id(self) -> int:
        sid = self._next_sid
        if sid > fr.MAX_WINDOW:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "no stream ids left")
        return sid

    def send_headers(self, sid: int, headers: Headers, end_stream: bool = False) -> None:
        stream = self.streams.get(sid)
        if stream is None:
            if not self.client_side or sid < self._next_sid:
                return  # a stream that is gone: nothing to send it
            stream = self.streams[sid] = _Stream(self._remote_initial_window,
                                                 self._stream_window)  # fmt: skip
            self._next_sid = sid + 2
        elif stream.local_closed:
            return
        block = self._encoder.encode(headers)
        size = self.max_outbound_frame_size
        out = self.out
        n = len(block)
        if n <= size:  # one frame (almost always)
            out += _HEAD_PACK(n >> 16, n & 0xFFFF, _HEADERS, _END_BLOCK if end_stream
                              else _END_HEADERS, sid)  # fmt: skip
            out += block
            if end_stream:
                stream.local_closed = True
                if stream.remote_closed:
                    del self.streams[sid]
            return
        flags = fr.END_STREAM if end_stream else 0
        out += fr.frame(FrameType.HEADERS, flags, sid, block[:size])
        for i in range(size, len(block), size):
            last = fr.END_HEADERS if i + size >= len(block) else 0
            out += fr.frame(FrameType.CONTINUATION, last, sid, block[i : i + size])
        if end_stream:
            self._local_end(sid, stream)

    def send_window(self, sid: int) -> int:
        stream = self.streams.get(sid)
        if stream is None or stream.local_closed:
            return 0
        return min(stream.window, self.window)

    def try_send_data(self, sid: int, data: bytes, end_stream: bool) -> bool:
        """`send_data` if all of `data` may go now in one frame (windows, frame size), else
        False and nothing sent: one call for the common case of a small DATA passed on."""
        stream = self.streams.get(sid)
        if stream is None or stream.local_closed:
            return False
        n = len(data)
        if n and (n > stream.window or n > self.window or n > self.max_outbound_frame_size):
            return False
        stream.window -= n
        self.window -= n
        out = self.out
        out += _HEAD_PACK(n >> 16, n & 0xFFFF, _DATA, 1 if end_stream else 0, sid)
        out += data
        if end_stream:
            stream.local_closed = True
            if stream.remote_closed:
                del self.streams[sid]
        return True

    def send_data(self, sid: int, data: bytes, end_stream: bool = False) -> None:
        """Send `data` (at most `send_window(sid)` and the peer's frame size)."""
        stream = self.streams.get(sid)
        if stream is None or stream.local_closed:
            return
        n = len(data)
        stream.window -= n
        self.window -= n
        out = self.out
        out += _HEAD_PACK(n >> 16, n & 0xFFFF, _DATA, 1 if end_stream else 0, sid)
        out += data
        if end_stream:
            self._local_end(sid, stream)

    def end_stream(self, sid: int) -> None:
        self.send_data(sid, b"", end_stream=True)

    def _local_end(self, sid: int, stream: _Stream) -> None:
        stream.local_closed = True
        if stream.remote_closed:
            del self.streams[sid]

    def reset_stream(self, sid: int, code: int = ErrorCodes.CANCEL) -> None:
        if self.streams.pop(sid, None) is not None:
            self.out += fr.rst_stream(sid, code)

    def forget_stream(self, sid: int) -> None:
        """Drop a stream without a frame (the peer's GOAWAY said it will never process it)."""
        self.streams.pop(sid, None)

    def acknowledge_received_data(self, n: int, sid: int) -> None:
        """`n` flow-controlled bytes of stream `sid` were passed on: the peer may send more."""
        if n <= 0:
            return
        due = self._recv_due + n
        if due >= self._conn_update_at:
            self.out += fr.window_update(0, due)
            self._recv_window += due
            due = 0
        self._recv_due = due
        stream = self.streams.get(sid)
        if stream is None or stream.remote_closed:
            return
        stream.recv_due += n
        if stream.recv_due >= self._stream_window // 2:
            self.out += fr.window_update(sid, stream.recv_due)
            stream.recv_window += stream.recv_due
            stream.recv_due = 0

    def close_connection(
        self, code: int = ErrorCodes.NO_ERROR, last_sid: int | None = None
    ) -> None:
        """Queue a GOAWAY: with NO_ERROR streams up to `last_sid` may still finish."""
        last = self.highest_inbound_stream_id if last_sid is None else last_sid
        self.out += fr.goaway(last, code)
        self.goaway_sent = True

    def ping(self, data: bytes = b"\0" * 8) -> None:
        self.out += fr.ping(data)

    # -- receiving -------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Parse what arrived, calling the handler; raises `H2Error` on a connection error
        (a GOAWAY with its code is queued first)."""
        buf = self._buf
        if buf:  # the rest of a frame was waiting
            buf += data
            data = bytes(buf)
            buf.clear()
        pos = end = 0
        try:
            if self._preface:
                n = len(fr.PREFACE)
                if len(data) < n:
                    if not fr.PREFACE.startswith(data):
                        raise H2Error(ErrorCodes.PROTOCOL_ERROR, "not an HTTP/2 preface")
                    buf += data
                    return
                if not data.startswith(fr.PREFACE):
                    raise H2Error(ErrorCodes.PROTOCOL_ERROR, "not an HTTP/2 preface")
                data = data[n:]
                self._preface = False
            end = len(data)
            max_frame = self.max_inbound_frame_size
            frame = self._frame
            unpack = _HEAD_UNPACK
            while end - pos >= 9:
                hi, lo, ftype, flags, sid = unpack(data, pos)
                length = (hi << 16) | lo
                if length > max_frame:
                    raise H2Error(ErrorCodes.FRAME_SIZE_ERROR, "frame larger than "
                                  "SETTINGS_MAX_FRAME_SIZE")  # fmt: skip
                start = pos + 9
                if end - start < length:
                    break
                pos = start + length
                # the fast path: a whole header block or DATA on an open connection (most
                # frames); every other frame goes through `_frame`'s checks and dispatch
                if ftype < 2 and self._plain:
                    try:
                        if ftype:
                            if flags & _BLOCK_FLAGS == _END_HEADERS:  # unpadded, no priority
                                self._block(sid & 0x7FFFFFFF, flags, data[start:pos])
                            else:
                                self._headers(flags, sid & 0x7FFFFFFF, data[start:pos])
                        else:
                            self._data(flags, sid & 0x7FFFFFFF, data[start:pos])
                    except H2Error as exc:
                        if not exc.stream:
                            raise
                        self._stream_error(exc.stream, exc.code)
                else:
                    frame(ftype, flags, sid & 0x7FFFFFFF, data[start:pos])
            if pos < end:
                buf += data[pos:]
        except H2Error as exc:
            buf.clear()
            self.close_connection(exc.code)
            raise

    def _frame(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        if self._cont is not None and ftype != _CONTINUATION:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "header block interrupted")
        if not self._settings_seen:
            if ftype != _SETTINGS or flags & fr.ACK:
                raise H2Error(ErrorCodes.PROTOCOL_ERROR, "the first frame must be SETTINGS")
            self._settings_seen = self._plain = True
        if ftype > _CONTINUATION:
            return  # unknown frame types are ignored (RFC 9113 4.1)
        try:
            self._dispatch[ftype](flags, sid, payload)
        except H2Error as exc:
            if not exc.stream:
                raise
            self._stream_error(exc.stream, exc.code)

    def _priority(self, flags: int, sid: int, payload: bytes) -> None:
        if sid == 0:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "PRIORITY on stream 0")
        if len(payload) != 5:
            raise H2Error(ErrorCodes.FRAME_SIZE_ERROR, "PRIORITY not 5 bytes", sid)

    def _push_promise(self, flags: int, sid: int, payload: bytes) -> None:
        raise H2Error(ErrorCodes.PROTOCOL_ERROR, "PUSH_PROMISE (push is disabled)")

    def _stream_error(self, sid: int, code: int) -> None:
        known = self.streams.pop(sid, None) is not None
        self.out += fr.rst_stream(sid, code)
        if known:
            self.handler.on_reset(sid, code)

    def _is_idle(self, sid: int) -> bool:
        """A stream id the peer (or we) never opened."""
        own = (sid & 1) == (1 if self.client_side else 0)
        return sid >= self._next_sid if own else sid > self.highest_inbound_stream_id

    def _calm(self, what: str) -> None:
        now = self.clock()
        if now - self._control_since >= 1.0:
            self._control_since, self._control = now, 0
        self._control += 1
        if self._control > self.limits.max_control_per_s:
            raise H2Error(ErrorCodes.ENHANCE_YOUR_CALM, f"{what} flood")

    # -- frames ----------------------------------------------------------------------------
    def _data(self, flags: int, sid: int, payload: bytes) -> None:
        if sid == 0:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "DATA on stream 0")
        flow = len(payload)
        self._recv_window -= flow
        if self._recv_window < 0:
            raise H2Error(ErrorCodes.FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        if flags & _PADDED:
            payload = _unpad(payload, sid)
        stream = self.streams.get(sid)
        if stream is None or stream.remote_closed or (self.client_side and not stream.head):
            if self._is_idle(sid):
                raise H2Error(ErrorCodes.PROTOCOL_ERROR, "DATA on an idle stream")
            self.acknowledge_received_data(flow, 0)
            if stream is not None:  # half-closed (remote) or no head yet: a stream error
                self.acknowledge_received_data(0, sid)
                raise H2Error(ErrorCodes.STREAM_CLOSED if stream.remote_closed
                              else ErrorCodes.PROTOCOL_ERROR, "unexpected DATA", sid)  # fmt: skip
            return
        stream.recv_window -= flow
        if stream.recv_window < 0:
            self.acknowledge_received_data(flow, 0)
            raise H2Error(ErrorCodes.FLOW_CONTROL_ERROR, "DATA beyond the stream window", sid)
        ended = flags & _END_STREAM == _END_STREAM
        if ended:
            stream.remote_closed = True
            if stream.local_closed:
                del self.streams[sid]
        self.handler.on_data(sid, payload, flow, ended)

    def _headers(self, flags: int, sid: int, payload: bytes) -> None:
        if sid == 0:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "HEADERS on stream 0")
        if flags & _PADDED:
            payload = _unpad(payload, sid)
        if flags & fr.PRIORITY_FLAG:
            if len(payload) < 5:
                raise H2Error(ErrorCodes.FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            payload = payload[5:]
        if flags & fr.END_HEADERS:
            self._block(sid, flags, payload)
            return
        self._cont = (sid, flags, [payload], len(payload))
        self._plain = False

    def _continuation(self, flags: int, sid: int, payload: bytes) -> None:
        cont = self._cont
        if cont is None or cont[0] != sid:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "CONTINUATION without its HEADERS")
        _, first_flags, parts, size = cont
        parts.append(payload)
        size += len(payload)
        if len(parts) > _MAX_CONTINUATIONS or size > self.limits.max_header_list_size:
            raise H2Error(ErrorCodes.ENHANCE_YOUR_CALM, "header block too long")
        if flags & fr.END_HEADERS:
            self._cont = None
            self._plain = True
            self._block(sid, first_flags, b"".join(parts))
        else:
            self._cont = (sid, first_flags, parts, size)

    def _block(self, sid: int, flags: int, block: bytes) -> None:
        stream = self.streams.get(sid)
        if stream is None:
            if sid == 0:
                raise H2Error(ErrorCodes.PROTOCOL_ERROR, "HEADERS on stream 0")
            opens = not self.client_side and sid & 1 and sid > self.highest_inbound_stream_id
            check = check_request if opens else None
        elif self.client_side and not stream.head:
            check = check_response
        else:
            check = check_trailers
        try:  # decoded whatever the stream's state, so the HPACK tables stay in step
            headers, why = self._decoder.decode(block, check)
        except OversizedHeaderListError as exc:
            raise H2Error(ErrorCodes.ENHANCE_YOUR_CALM, "header list too large") from exc
        except HPACKError as exc:
            raise H2Error(ErrorCodes.COMPRESSION_ERROR, f"HPACK: {exc}") from exc
        ended = flags & _END_STREAM == _END_STREAM
        if stream is None:
            if check is None:
                if self._is_idle(sid):
                    raise H2Error(ErrorCodes.PROTOCOL_ERROR, "HEADERS on an idle stream")
                return  # a stream we closed: decoded, not used
            # a new stream (`_new_stream`, inlined: once per request)
            self.highest_inbound_stream_id = sid
            streams = self.streams
            if len(streams) >= self.limits.max_concurrent_streams:
                raise H2Error(ErrorCodes.PROTOCOL_ERROR, "more concurrent streams than allowed")
            if why is not None:  # malformed (RFC 9113 8.1.1): a stream error
                self.out += fr.rst_stream(sid, ErrorCodes.PROTOCOL_ERROR)
                return
            stream = streams[sid] = _Stream(self._remote_initial_window, self._stream_window)
            stream.remote_closed = ended
            self.handler.on_request(sid, headers, ended)
            return
        if stream.remote_closed:
            raise H2Error(ErrorCodes.STREAM_CLOSED, "HEADERS after END_STREAM", sid)
        if why is not None:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, why, sid)
        handler = self.handler
        if check is check_response:
            if headers[0][1][0] == 0x31:  # 1xx
                if ended:
                    raise H2Error(ErrorCodes.PROTOCOL_ERROR, "1xx with END_STREAM", sid)
                handler.on_informational(sid, headers)
                return
            stream.head = True
            if ended:
                self._remote_end(sid, stream)
            handler.on_response(sid, headers, ended)
            return
        if not ended:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "trailers without END_STREAM", sid)
        self._remote_end(sid, stream)
        handler.on_trailers(sid, headers)

    def _remote_end(self, sid: int, stream: _Stream) -> None:
        stream.remote_closed = True
        if stream.local_closed:
            del self.streams[sid]

    def _window_update(self, flags: int, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise H2Error(ErrorCodes.FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 bytes")
        inc = fr.unpack_u32(payload) & 0x7FFFFFFF
        if sid == 0:
            if inc == 0:
                raise H2Error(ErrorCodes.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self.window += inc
            if self.window > fr.MAX_WINDOW:
                raise H2Error(ErrorCodes.FLOW_CONTROL_ERROR, "connection window over 2^31-1")
            self.handler.on_window(0)
            return
        stream = self.streams.get(sid)
        if stream is None:
            if self._is_idle(sid):
                raise H2Error(ErrorCodes.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
            return
        if inc == 0:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "WINDOW_UPDATE of 0", sid)
        stream.window += inc
        if stream.window > fr.MAX_WINDOW:
            raise H2Error(ErrorCodes.FLOW_CONTROL_ERROR, "stream window over 2^31-1", sid)
        self.handler.on_window(sid)

    def _settings(self, flags: int, sid: int, payload: bytes) -> None:
        if sid != 0:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & fr.ACK:
            if payload:
                raise H2Error(ErrorCodes.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        if len(payload) % 6:
            raise H2Error(ErrorCodes.FRAME_SIZE_ERROR, "SETTINGS not a multiple of 6 bytes")
        self._calm("SETTINGS")
        for key, value in fr.unpack_settings(payload):
            if key == Setting.INITIAL_WINDOW_SIZE:
                if value > fr.MAX_WINDOW:
                    raise H2Error(ErrorCodes.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE too big")
                delta = value - self._remote_initial_window
                self._remote_initial_window = value
                for stream in self.streams.values():
                    stream.window += delta
                    if stream.window > fr.MAX_WINDOW:
                        raise H2Error(ErrorCodes.FLOW_CONTROL_ERROR, "stream window too big")
            elif key == Setting.MAX_FRAME_SIZE:
                if not fr.DEFAULT_FRAME_SIZE <= value <= fr.MAX_FRAME_SIZE:
                    raise H2Error(ErrorCodes.PROTOCOL_ERROR, "bad SETTINGS_MAX_FRAME_SIZE")
                self.max_outbound_frame_size = value
            elif key == Setting.MAX_CONCURRENT_STREAMS:
                self.remote_max_concurrent_streams = value
            elif key == Setting.HEADER_TABLE_SIZE:
                self._encoder.set_table_size(value)
            elif key == Setting.ENABLE_PUSH and (value > 1 or (self.client_side and value)):
                raise H2Error(ErrorCodes.PROTOCOL_ERROR, "bad SETTINGS_ENABLE_PUSH")
        self.out += fr.settings(ack=True)
        self.handler.on_settings()

    def _ping(self, flags: int, sid: int, payload: bytes) -> None:
        if sid != 0:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise H2Error(ErrorCodes.FRAME_SIZE_ERROR, "PING not 8 bytes")
        if not flags & fr.ACK:
            self._calm("PING")
            self.out += fr.ping(payload, ack=True)

    def _rst(self, flags: int, sid: int, payload: bytes) -> None:
        if sid == 0:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if len(payload) != 4:
            raise H2Error(ErrorCodes.FRAME_SIZE_ERROR, "RST_STREAM not 4 bytes")
        if self.streams.pop(sid, None) is not None:
            self.handler.on_reset(sid, fr.unpack_u32(payload))
        elif self._is_idle(sid):
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "RST_STREAM on an idle stream")

    def _goaway(self, flags: int, sid: int, payload: bytes) -> None:
        if sid != 0:
            raise H2Error(ErrorCodes.PROTOCOL_ERROR, "GOAWAY on a stream")
        if len(payload) < 8:
            raise H2Error(ErrorCodes.FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes")
        last, code = fr.unpack_goaway(payload)
        self.handler.on_goaway(code, last)


def _unpad(payload: bytes, sid: int) -> bytes:
    if not payload:
        raise H2Error(ErrorCodes.FRAME_SIZE_ERROR, "padded frame without its pad length")
    pad = payload[0]
    if pad >= len(payload):
        raise H2Error(ErrorCodes.PROTOCOL_ERROR, "padding longer than the frame")
    return payload[1 : len(payload) - pad]
