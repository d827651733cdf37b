"""What went over the wire: TCP streams from a tcpdump capture, and whether they are TLS.

`tcp_streams(pcap, a, b)` reads a classic pcap file (tcpdump -w; Ethernet link type) and
returns, per direction of every TCP connection between hosts `a` and `b`, the payload bytes
in sequence order (a retransmitted segment is counted once). `tls_records(data)` walks a
stream as TLS records (a content type 20-23, a 0x03xx version, a 2-byte length) and returns
(type, length) per record; anything else, such as plaintext HTTP, raises ValueError with the
offset and the first bytes found there. A stream cut short by the capture's end is allowed
to end inside its last record.
"""

from __future__ import annotations

import socket
import struct

__all__ = ["Stream", "tcp_streams", "tls_records"]

Stream = tuple[str, int, str, int]  # (src, sport, dst, dport)
TLS_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}


def tcp_streams(pcap: bytes, a: str, b: str) -> dict[Stream, bytes]:
    if len(pcap) < 24:
        raise ValueError("not a pcap file (shorter than its header)")
    magic = pcap[:4]
    order = {
        b"\xd4\xc3\xb2\xa1": "<",
        b"\xa1\xb2\xc3\xd4": ">",
        b"\x4d\x3c\xb2\xa1": "<",
        b"\xa1\xb2\x3c\x4d": ">",
    }.get(magic)
    if order is None:
        raise ValueError("not a classic pcap file")
    pair = {socket.inet_aton(a), socket.inet_aton(b)}
    segments: dict[Stream, dict[int, bytes]] = {}
    offset = 24
    while offset + 16 <= len(pcap):
        incl = struct.unpack_from(f"{order}I", pcap, offset + 8)[0]
        frame = pcap[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        src, dst = frame[26:30], frame[30:34]
        if {src, dst} != pair:
            continue
        ihl = (frame[14] & 0x0F) * 4
        total = struct.unpack_from(">H", frame, 16)[0]
        tcp = 14 + ihl
        sport, dport, seq = struct.unpack_from(">HHI", frame, tcp)
        data_off = (frame[tcp + 12] >> 4) * 4
        payload = frame[tcp + data_off : 14 + total]
        key = (socket.inet_ntoa(src), sport, socket.inet_ntoa(dst), dport)
        parts = segments.setdefault(key, {})
        if payload and len(payload) > len(parts.get(seq, b"")):
            parts[seq] = payload
    streams: dict[Stream, bytes] = {}
    for key, parts in segments.items():
        data = b""
        if parts:
            start = min(parts)
            for seq in sorted(parts, key=lambda s: (s - start) & 0xFFFFFFFF):
                rel = (seq - start) & 0xFFFFFFFF
                if rel + len(parts[seq]) > len(data):
                    data = data[:rel] + parts[seq]
        streams[key] = data
    return streams


def tls_records(data: bytes) -> list[tuple[int, int]]:
    records = []
    offset = 0
    while offset < len(data):
        head = data[offset : offset + 5]
        if len(head) < 5:
            if head and head[0] not in TLS_TYPES:
                raise ValueError(f"at byte {offset}: {head!r} is not a TLS record")
            break
        kind, major, _minor, length = head[0], head[1], head[2], struct.unpack(">H", head[3:5])[0]
        if kind not in TLS_TYPES or major != 3 or length > 16384 + 2048:
            raise ValueError(
                f"at byte {offset}: {data[offset : offset + 24]!r} is not a TLS record"
            )
        records.append((kind, length))
        offset += 5 + length
    return records
