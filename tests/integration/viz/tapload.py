"""A bounded load generator for tap: COUNT GETs at RATE over one keep-alive connection,
cycling /x, /x, /x, /y, /y, /fail; prints its own counts per path and status.

    python tapload.py URL COUNT RATE  ->  {"/x": {"200": n}, "/y": {...}, "/fail": {"500": n}}
"""

from __future__ import annotations

import http.client
import json
import sys
import time
import urllib.parse

CYCLE = ("/x", "/x", "/x", "/y", "/y", "/fail")


def main() -> None:
    url, count, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=5)
    counts: dict[str, dict[str, int]] = {}
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        path = CYCLE[i % len(CYCLE)]
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            status = str(response.status)
        except (OSError, http.client.HTTPException):
            conn.close()
            status = "error"
        by_status = counts.setdefault(path, {})
        by_status[status] = by_status.get(status, 0) + 1
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
