"""A network delay line without netem: hold each queued packet's verdict for DELAY ms.

This kernel has no sch_netem, but it has NFQUEUE. `python -m tests.faults.delay QUEUE MS
SECONDS`, run inside a pod's namespace (netfilter queues are per namespace), binds queue
QUEUE over netlink (NETLINK_NETFILTER, the nfnetlink_queue messages, metadata only) and
accepts every packet MS milliseconds after it arrived, in arrival order, for SECONDS; then it
accepts whatever it still holds and unbinds. An iptables rule sends packets to it, with
`--queue-bypass` so that packets pass undelayed whenever no delayer is bound:

    iptables -I INPUT -i lweth0 -j NFQUEUE --queue-num 7 --queue-bypass

It prints a JSON line once bound (`{"bound": QUEUE}`), then one with how many packets it
delayed.
"""

from __future__ import annotations

import collections
import json
import select
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
MSG_PACKET, MSG_VERDICT, MSG_CONFIG = 0, 1, 2
CFG_CMD, CFG_PARAMS, CFG_QUEUE_MAXLEN = 1, 2, 3
CMD_BIND, CMD_UNBIND = 1, 2
COPY_META = 1
PACKET_HDR = 1
VERDICT_HDR = 2
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def _attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _message(kind: int, queue: int, attrs: bytes, seq: int, flags: int = NLM_F_REQUEST) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    return (
        struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body
    )


def _packet_ids(data: bytes) -> list[int]:
    ids = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_QUEUE << 8) | MSG_PACKET:
            at = offset + 20  # nlmsghdr + nfgenmsg
            while at + 4 <= offset + length:
                alen, atype = struct.unpack_from("=HH", data, at)
                if alen < 4:
                    break
                if atype & 0x7FFF == PACKET_HDR:
                    ids.append(struct.unpack_from(">I", data, at + 4)[0])
                at += (alen + 3) & ~3
        offset += (length + 3) & ~3
    return ids


def run(queue: int, delay: float, seconds: float) -> dict[str, object]:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    seq = 1

    def config(attrs: bytes) -> None:
        nonlocal seq
        sock.send(_message(MSG_CONFIG, queue, attrs, seq, NLM_F_REQUEST | NLM_F_ACK))
        seq += 1
        reply = sock.recv(65536)
        if struct.unpack_from("=H", reply, 4)[0] == NLMSG_ERROR:
            code = struct.unpack_from("=i", reply, 16)[0]
            if code:
                raise OSError(-code, f"nfnetlink_queue config: {code}")

    config(_attr(CFG_CMD, struct.pack("=BBH", CMD_BIND, 0, 0)))
    config(_attr(CFG_PARAMS, struct.pack(">IB", 0, COPY_META)))
    config(_attr(CFG_QUEUE_MAXLEN, struct.pack(">I", 8192)))
    print(json.dumps({"bound": queue}), flush=True)  # from now on packets wait here
    held: collections.deque[tuple[float, int]] = collections.deque()
    delayed = 0
    until = time.monotonic() + seconds

    def release(upto: float) -> None:
        nonlocal seq, delayed
        while held and held[0][0] <= upto:
            _, packet = held.popleft()
            verdict = _attr(VERDICT_HDR, struct.pack(">II", NF_ACCEPT, packet))
            sock.send(_message(MSG_VERDICT, queue, verdict, seq))
            seq += 1
            delayed += 1

    try:
        while (now := time.monotonic()) < until:
            wait = min(until - now, held[0][0] - now if held else 0.05, 0.05)
            if select.select([sock], [], [], max(0.0, wait))[0]:
                arrived = time.monotonic()
                for packet in _packet_ids(sock.recv(1 << 20)):
                    held.append((arrived + delay, packet))
            release(time.monotonic())
    finally:
        release(float("inf"))
        config(_attr(CFG_CMD, struct.pack("=BBH", CMD_UNBIND, 0, 0)))
        sock.close()
    return {"delayed_packets": delayed}


if __name__ == "__main__":
    result = run(int(sys.argv[1]), float(sys.argv[2]) / 1000, float(sys.argv[3]))
    print(json.dumps(result), flush=True)
