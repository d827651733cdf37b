"""Hostile and heavy clients for the fault suite, run inside a pod; each prints one JSON line.

python -m tests.faults.attacks flood HOST PORT N HOLD
    opens N TCP connections (raising its own open-file limit), sends nothing, holds them
    HOLD seconds, then counts how many the peer had closed, and closes them all
python -m tests.faults.attacks slowloris HOST PORT N SECONDS
    N connections each send a request line and then one header line per second, never
    finishing the head, for SECONDS; records when (and with what) the peer closed each
python -m tests.faults.attacks upload HOST PORT PATH BYTES
    one POST of BYTES zero bytes (Content-Length), written as fast as the peer takes them;
    prints the answer and how long the writes took
"""

from __future__ import annotations

import json
import resource
import selectors
import socket
import sys
import time


def flood(host: str, port: int, n: int, hold: float) -> dict[str, object]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 256)), hard))
    socks: list[socket.socket] = []
    refused = 0
    started = time.time()
    for _ in range(n):
        try:
            socks.append(socket.create_connection((host, port), timeout=3))
        except OSError:
            refused += 1
    opened = time.time() - started
    time.sleep(hold)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    for s in socks:
        s.close()
    return {
        "opened": len(socks),
        "refused": refused,
        "open_seconds": round(opened, 2),
        "closed_by_peer": closed,
    }


def slowloris(host: str, port: int, n: int, seconds: float) -> dict[str, object]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 256)), hard))
    started = time.time()
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=3)
        s.sendall(b"GET / HTTP/1.1\r\nHost: slow\r\n")
        s.setblocking(False)
        socks.append(s)
    closed_at: dict[int, float] = {}
    answers: dict[str, int] = {}
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    next_line = time.time() + 1
    while time.time() - started < seconds and len(closed_at) < n:
        for key, _ in sel.select(timeout=0.2):
            i = key.data
            try:
                data = key.fileobj.recv(4096)  # type: ignore[union-attr]
            except OSError:
                data = b""
            if data.startswith(b"HTTP/"):
                status = data.split(b" ", 2)[1].decode()
                answers[status] = answers.get(status, 0) + 1
            if not data or data.startswith(b"HTTP/"):
                closed_at[i] = time.time() - started
                sel.unregister(key.fileobj)
        if time.time() >= next_line:
            next_line += 1
            for i, s in enumerate(socks):
                if i not in closed_at:
                    try:
                        s.send(b"X-Slow: 1\r\n")
                    except OSError:
                        closed_at[i] = time.time() - started
                        sel.unregister(s)
    times = sorted(closed_at.values())
    for s in socks:
        s.close()
    return {
        "connections": n,
        "closed_by_peer": len(times),
        "answers": answers,
        "first_close": round(times[0], 2) if times else None,
        "last_close": round(times[-1], 2) if times else None,
    }


def upload(host: str, port: int, path: str, size: int) -> dict[str, object]:
    chunk = bytes(256 * 1024)
    started = time.time()
    with socket.create_connection((host, port), timeout=60) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        left = size
        progress = []
        while left:
            step = min(len(chunk), left)
            s.sendall(chunk[:step])
            left -= step
            if (size - left) % (64 * 1024 * 1024) == 0:
                progress.append(round(time.time() - started, 2))
        written = time.time() - started
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().split(b"\r\n\r\n", 1)[1]:
            data = s.recv(65536)
            if not data:
                break
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "none"
    return {
        "status": status,
        "body": body.decode(errors="replace")[:40],
        "write_seconds": round(written, 2),
        "seconds": round(time.time() - started, 2),
        "per_64mib": progress,
    }


def main(argv: list[str]) -> int:
    kind, host, port = argv[0], argv[1], int(argv[2])
    if kind == "flood":
        result = flood(host, port, int(argv[3]), float(argv[4]))
    elif kind == "slowloris":
        result = slowloris(host, port, int(argv[3]), float(argv[4]))
    elif kind == "upload":
        result = upload(host, port, argv[3], int(argv[4]))
    else:
        print(f"unknown attack {kind!r}", file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
