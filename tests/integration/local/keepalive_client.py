"""A client for the local cluster's root tests: GETs over keep-alive connections, timestamped.

`python -m tests.integration.local.keepalive_client URL SECONDS_OR_COUNT [CONCURRENCY]` runs
CONCURRENCY threads (default 1), each sending GETs one after another on ONE HTTP/1.1
connection of its own, either COUNT requests each (an integer) or for SECONDS (`3.5s`).
It prints one JSON line per request, `{"t": start time (unix seconds), "c": thread,
"pod": body}` or `{"t": ..., "c": ..., "error": "..."}`, then `{"done": true, "connects": n}`.
After a failed request a thread opens a new connection, as a pooled client would.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit

_print_lock = threading.Lock()


def _emit(record: dict[str, object]) -> None:
    with _print_lock:
        print(json.dumps(record), flush=True)


def _worker(index: int, host: str, port: int, path: str, until: float, count: int) -> int:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    connects = 1
    sent = 0
    while (sent < count) if count else (time.time() < until):
        sent += 1
        t = time.time()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read().decode()
            if response.status == 200:
                _emit({"t": t, "c": index, "pod": body})
            else:
                _emit({"t": t, "c": index, "error": f"HTTP {response.status}: {body[:80]}"})
        except (OSError, http.client.HTTPException) as exc:
            _emit({"t": t, "c": index, "error": f"{type(exc).__name__}: {exc}"})
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=5)
            connects += 1
    conn.close()
    return connects


def main() -> int:
    url = urlsplit(sys.argv[1])
    amount = sys.argv[2]
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    count = 0 if amount.endswith("s") else int(amount)
    until = time.time() + float(amount.removesuffix("s")) if not count else 0.0
    host, port = url.hostname or "localhost", url.port or 80
    connects: list[int] = []
    path = url.path or "/"

    def run(index: int) -> None:
        connects.append(_worker(index, host, port, path, until, count))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _emit({"done": True, "connects": sum(connects)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
