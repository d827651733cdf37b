"""What one proxy's HTTP/2 path costs in Python, measured in-process, without sockets or load.

    python bench/h2_loop.py [--rounds N] [--opcodes]

One outbound `Side` (fixed destination, no discovery, as the benchmark's pair) with 16
accepted `H2Server` connections on `FakeTransport`s, each sending 10 GET streams per round as
one read (the bytes h2load would send once its HPACK table is warm); the side's `H2Pool` opens
its upstream `H2Upstream`s through a connector that returns fake transports, and each round
every open upstream stream is answered with nginx's response head and a 2-byte DATA frame with
END_STREAM, one read per upstream connection. Between the two halves of a round the event
loop runs once, so `Flusher.flush_soon` writes as it would after a poll.

The figure is the best of six batches of process CPU time per request: the proxy's own
Python work for one request, both directions, with no kernel or load generator in it. It
moves with what else the machine runs (caches, frequency), so compare trees in turn on one
machine. `--opcodes` instead counts the Python bytecodes executed per request (through
`sys.settrace`, so slowly, over fewer rounds) and which functions ran them: a count that does
not depend on the machine at all, for comparing two trees step by step.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # run as `python bench/h2_loop.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from hpack import Encoder

from lacewing.proxy.config import Addr, load
from lacewing.proxy.h2 import frames as fr
from lacewing.proxy.h2.client import H2Upstream
from lacewing.proxy.h2.server import H2Server
from lacewing.proxy.metrics import ProxyMetrics
from lacewing.proxy.side import Side
from lacewing.proxy.transport.fake import FakeTransport

__all__ = ["main"]

CLIENTS, STREAMS = 16, 10
BATCHES = 6
_HEAD = struct.Struct(">BHBBL")
DST = Addr("127.0.0.1", 4140)
REQUEST = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"),
           (b":authority", b"127.0.0.1:4140"), (b"accept", b"*/*"),
           (b"accept-encoding", b"gzip, deflate"),
           (b"user-agent", b"h2load nghttp2/1.52.0")]  # fmt: skip
RESPONSE = [(b":status", b"200"), (b"server", b"nginx/1.22.1"),
            (b"date", b"Mon, 07 Dec 2026 01:00:00 GMT"),
            (b"content-type", b"application/octet-stream"), (b"content-length", b"2")]  # fmt: skip


def _blocks(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    """The first block of a connection for `headers`, and the block of every later one."""
    enc = Encoder()
    return enc.encode(headers, huffman=True), enc.encode(headers, huffman=True)


REQ_FIRST, REQ = _blocks(REQUEST)
RESP_FIRST, RESP = _blocks(RESPONSE)


class _Connector:
    """Upstream connections on fake transports (the pool's `side.connector`)."""

    def __init__(self) -> None:
        self.upstreams: list[H2Upstream] = []

    def labels_for(self, addr: Addr) -> None:
        return None

    async def connect(self, addr: Addr, factory: Callable[[], Any]) -> tuple[Any, Any]:
        proto = factory()
        transport = FakeTransport(proto)
        proto.connection_made(transport)
        self.upstreams.append(proto)
        return transport, proto


def _requests(first_sid: int) -> bytes:
    """One read of a client connection: STREAMS GETs, HEADERS with END_STREAM each."""
    out = bytearray()
    for sid in range(first_sid, first_sid + 2 * STREAMS, 2):
        block = REQ_FIRST if sid == 1 else REQ
        out += _HEAD.pack(0, len(block), fr.FrameType.HEADERS, fr.END_HEADERS | fr.END_STREAM,
                          sid) + block  # fmt: skip
    return bytes(out)


def _answer(upstreams: list[H2Upstream], answered: set[int]) -> int:
    """Answer every open stream of every upstream connection, one read each; how many."""
    n = 0
    for up in upstreams:
        if not up.streams:
            continue
        out = bytearray()
        if id(up) not in answered:  # nginx's SETTINGS, window and ACK come first
            answered.add(id(up))
            out += fr.settings({fr.Setting.MAX_CONCURRENT_STREAMS: 128,
                                fr.Setting.INITIAL_WINDOW_SIZE: 65536})  # fmt: skip
            out += fr.window_update(0, fr.MAX_WINDOW - fr.DEFAULT_WINDOW)
            out += fr.settings(ack=True)
        for sid in sorted(up.streams):
            block = RESP_FIRST if sid == 1 else RESP
            out += _HEAD.pack(0, len(block), fr.FrameType.HEADERS, fr.END_HEADERS, sid) + block
            out += _HEAD.pack(0, 2, fr.FrameType.DATA, fr.END_STREAM, sid) + b"ok"
            n += 1
        assert isinstance(up.transport, FakeTransport)
        up.transport.written.clear()
        up.data_received(bytes(out))
    return n


async def _run(rounds: int, opcodes: bool) -> tuple[float, int, Counter[str]]:
    connector = _Connector()
    metrics = ProxyMetrics()
    side = Side("outbound", load({}), metrics, connector, resolve=lambda d: d,
                fixed_dst=Addr("127.0.0.1", 4143))  # fmt: skip
    clients: list[tuple[H2Server, FakeTransport]] = []
    preface = (
        fr.PREFACE
        + fr.settings({fr.Setting.INITIAL_WINDOW_SIZE: fr.MAX_WINDOW >> 1})
        + fr.window_update(0, (fr.MAX_WINDOW >> 1) - fr.DEFAULT_WINDOW)
        + fr.settings(ack=True)
    )
    for _ in range(CLIENTS):
        server = H2Server(side, DST, metrics.tcp_stats("outbound", "src", str(DST), side.tls))
        transport = FakeTransport(server)
        server.adopt(transport, preface)
        clients.append((server, transport))
    warm = 20
    reads = [_requests(1 + 2 * STREAMS * r) for r in range(warm + rounds)]
    answered: set[int] = set()
    counts: Counter[str] = Counter()
    executed = 0

    async def one_round(r: int) -> int:
        for server, transport in clients:
            server.data_received(reads[r])
            transport.written.clear()
        await asyncio.sleep(0)  # the flush after the poll; upstreams connect in the warm-up
        n = _answer(connector.upstreams, answered)
        await asyncio.sleep(0)
        return n

    for r in range(warm):
        await one_round(r)

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal executed
        frame.f_trace_opcodes = True
        if event == "opcode":
            executed += 1
            code = frame.f_code
            counts[f"{Path(code.co_filename).name}:{code.co_name}"] += 1
        return trace

    best = float("inf")
    per_batch = max(1, rounds // BATCHES)
    done_all = 0
    if opcodes:
        sys.settrace(trace)
    try:
        for batch in range(BATCHES):
            done = 0
            started = time.process_time()
            for r in range(warm + batch * per_batch, warm + (batch + 1) * per_batch):
                done += await one_round(r)
            if done != per_batch * CLIENTS * STREAMS:
                raise SystemExit(f"error: {done} of {per_batch * CLIENTS * STREAMS} answered")
            best = min(best, (time.process_time() - started) / done * 1e6)
            done_all += done
    finally:
        sys.settrace(None)
    return best, executed // max(1, done_all), counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="h2_loop.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=600, help="rounds of 160 requests")
    parser.add_argument("--opcodes", action="store_true", help="count bytecodes per request")
    args = parser.parse_args(argv)
    if not BATCHES <= args.rounds <= 100_000:
        parser.error(f"--rounds must be between {BATCHES} and 100000")
    rounds = min(args.rounds, 60) if args.opcodes else args.rounds
    best, executed, counts = asyncio.run(_run(rounds, args.opcodes))
    if args.opcodes:
        print(f"{executed} Python opcodes per request; by function:")
        total = max(1, sum(counts.values()))
        for name, n in counts.most_common(25):
            print(f"  {n * executed / total:7.1f}  {name}")
    else:
        print(f"{best:.2f} us of process CPU per request (best of {BATCHES} batches)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
