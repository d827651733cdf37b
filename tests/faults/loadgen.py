"""The fault suite's load generator: paced GETs over keep-alive connections, every one counted.

`python -m tests.faults.loadgen URL SECONDS CONCURRENCY RATE TIMEOUT` runs CONCURRENCY
threads for SECONDS at most, or until SIGTERM (requests in flight then finish); each
keeps ONE HTTP/1.1 connection and sends GETs on it paced at RATE
requests per second (a slot every 1/RATE s; a late request starts at once, none is skipped),
with a TIMEOUT-second socket timeout. After a failure a thread opens a new connection, as a
pooled client would, and goes on; it never retries the failed request.

At the end it prints one JSON object: `{"records": [[start, end, outcome], ...]}` with unix
times and the outcome `"ok"` (a 200), `"HTTP 503"` or the exception's class name. Nothing is
counted twice and nothing is dropped: every request started is a record.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import threading
import time
from urllib.parse import urlsplit

_stop = threading.Event()


def _worker(
    host: str,
    port: int,
    path: str,
    until: float,
    rate: float,
    timeout: float,
    out: list[list[object]],
) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    slot = time.time()
    while True:
        now = time.time()
        if slot > now and _stop.wait(slot - now):
            break
        start = time.time()
        if start >= until or _stop.is_set():
            break
        slot += 1.0 / rate
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            outcome = "ok" if response.status == 200 else f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as exc:
            outcome = type(exc).__name__
        out.append([start, time.time(), outcome])
        if outcome != "ok":
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.close()


def main() -> int:
    url = urlsplit(sys.argv[1])
    seconds, concurrency = float(sys.argv[2]), int(sys.argv[3])
    rate, timeout = float(sys.argv[4]), float(sys.argv[5])
    until = time.time() + seconds
    signal.signal(signal.SIGTERM, lambda signum, frame: _stop.set())
    records: list[list[object]] = []
    threads = [
        threading.Thread(
            target=_worker,
            args=(url.hostname, url.port or 80, url.path or "/", until, rate, timeout, records),
        )
        for _ in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    json.dump({"records": sorted(records)}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
