"""A client for the route tests: N requests on keep-alive connections, one JSON summary.

`python -m tests.integration.local.route_client URL COUNT [CONCURRENCY] [POST_BYTES]` sends
COUNT requests per thread (GET, or POST with a body of POST_BYTES) and prints
`{"statuses": {"200": n, ...}, "bodies": {...}, "seconds": [each request's time]}`;
a connection error counts as status "error" and the thread reconnects.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit


def main() -> None:
    url = urlsplit(sys.argv[1])
    count = int(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    post = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    statuses: Counter[str] = Counter()
    bodies: Counter[str] = Counter()
    seconds: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        conn = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=10)
        for _ in range(count):
            start = time.monotonic()
            try:
                if post:
                    conn.request("POST", url.path or "/", body=b"x" * post)
                else:
                    conn.request("GET", url.path or "/")
                response = conn.getresponse()
                body = response.read().decode(errors="replace")
                status = str(response.status)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=10)
                status, body = "error", ""
            with lock:
                statuses[status] += 1
                if status == "200":
                    bodies[body] += 1
                seconds.append(time.monotonic() - start)
        conn.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"statuses": statuses, "bodies": bodies, "seconds": seconds}))


if __name__ == "__main__":
    main()
