"""Run from inside a pod: try each target once, print one JSON line per target.

    python -m tests.integration.local.policy_probe http://api.pa:8080/case-1 tcp://api.pa:9000/case-4

HTTP: `{"target": T, "status": 200, "body": "..."}` (status 0 when no answer came).
TCP: connects, sends the path's last segment and a newline, reads the answer:
`{"target": T, "status": "echoed"|"closed", "body": "..."}`.
gRPC (`grpc://host:port/case`, or `grpc://host:port/METHOD/case`): one unary call to
grpc_app's `lw.Echo/Unary` (or `lw.Echo/METHOD`) with the case name: `{"status": "OK",
"body": POD}` or the gRPC status name (`PERMISSION_DENIED`, `NOT_FOUND`).
"""

from __future__ import annotations

import json
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request


def _http(url: str) -> tuple[object, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except OSError as err:
        return 0, f"{type(err).__name__}: {err}"


def _tcp(url: str) -> tuple[object, str]:
    parts = urllib.parse.urlsplit(url)
    token = parts.path.rsplit("/", 1)[-1]
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=5) as s:
            s.sendall(token.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(100)
                if not chunk:
                    break
                data += chunk
    except OSError as err:
        return "closed", f"{type(err).__name__}: {err}"
    text = data.decode(errors="replace").strip()
    return ("echoed" if text == f"echo {token}" else "closed"), text


def _grpc(url: str) -> tuple[object, str]:
    """One unary call of the grpc_app service, the case name as the request."""
    import grpc

    parts = urllib.parse.urlsplit(url)
    method, _, token = parts.path.strip("/").rpartition("/")
    with grpc.insecure_channel(f"{parts.hostname}:{parts.port}") as channel:
        try:
            call = channel.unary_unary(f"/lw.Echo/{method or 'Unary'}")
            answer = call(token.encode(), timeout=5)
        except grpc.RpcError as exc:
            return exc.code().name, str(exc.details())
    return "OK", answer.decode(errors="replace")


PROBES = {"tcp": _tcp, "grpc": _grpc, "http": _http}

if __name__ == "__main__":
    for target in sys.argv[1:]:
        status, body = PROBES[target.partition("://")[0]](target)
        print(json.dumps({"target": target, "status": status, "body": body[:200]}), flush=True)
