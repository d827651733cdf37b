"""A bounded load generator: N GETs at a fixed rate, every Kth to /fail; prints its own counts.

    python loadgen.py URL COUNT RATE FAIL_EVERY   ->   {"sent": N, "ok": n200, "failed": n500}

Requests go over one keep-alive connection (reopened if the server closes it); a request that
gets no response counts as neither ok nor failed, so `sent` may exceed `ok + failed`.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
import urllib.parse


def main() -> None:
    url, count, rate, fail_every = (
        sys.argv[1],
        int(sys.argv[2]),
        float(sys.argv[3]),
        int(sys.argv[4]),
    )
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=5)
    sent = ok = failed = 0
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        path = "/fail" if fail_every and i % fail_every == fail_every - 1 else "/"
        sent += 1
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            continue
        if response.status == 200:
            ok += 1
        elif response.status == 500:
            failed += 1
    print(json.dumps({"sent": sent, "ok": ok, "failed": failed}), flush=True)


if __name__ == "__main__":
    main()
