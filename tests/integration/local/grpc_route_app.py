"""A grpcio app and client for GRPCRoutes on the local cluster (raw bytes, no protobuf).

    python -m tests.integration.local.grpc_route_app server PORT
    python -m tests.integration.local.grpc_route_app client TARGET METHOD N [TIMEOUT_S]

The server's `lw.Route` service: `Who` and `Canary` answer the pod's name, `Slow` answers
after 2 s, `Flaky` aborts UNAVAILABLE on every `FAIL_EVERY`-th call (env; 0: never), and
`Count` answers how many `Flaky` calls the pod received. The client makes N calls of METHOD
on one channel and prints one JSON line: calls by status code name, answers by pod, and the
slowest call's milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from concurrent import futures

import grpc

POD = os.environ.get("POD_NAME", "?").encode()
FAIL_EVERY = int(os.environ.get("FAIL_EVERY", "0"))
SERVICE = "lw.Route"
_flaky = [0]
_lock = threading.Lock()


def _who(request: bytes, context: grpc.ServicerContext) -> bytes:
    return POD


def _slow(request: bytes, context: grpc.ServicerContext) -> bytes:
    time.sleep(2.0)
    return POD


def _flaky_call(request: bytes, context: grpc.ServicerContext) -> bytes:
    with _lock:
        _flaky[0] += 1
        n = _flaky[0]
    if FAIL_EVERY and n % FAIL_EVERY == 0:
        context.abort(grpc.StatusCode.UNAVAILABLE, "flaky")
    return POD


def _count(request: bytes, context: grpc.ServicerContext) -> bytes:
    return b"%d" % _flaky[0]


def serve(port: int) -> None:
    handlers = {
        "Who": grpc.unary_unary_rpc_method_handler(_who),
        "Canary": grpc.unary_unary_rpc_method_handler(_who),
        "Slow": grpc.unary_unary_rpc_method_handler(_slow),
        "Flaky": grpc.unary_unary_rpc_method_handler(_flaky_call),
        "Count": grpc.unary_unary_rpc_method_handler(_count),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    server.add_insecure_port(f"0.0.0.0:{port}")
    server.start()
    print(f"grpc_route_app listening on {port}", flush=True)
    server.wait_for_termination()


def client(target: str, method: str, calls: int, timeout: float) -> None:
    codes: Counter[str] = Counter()
    pods: Counter[str] = Counter()
    slowest = 0.0
    details: Counter[str] = Counter()
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(f"/{SERVICE}/{method}")
        for _ in range(calls):
            started = time.monotonic()
            try:
                pods[call(b"", timeout=timeout).decode()] += 1
                codes["OK"] += 1
            except grpc.RpcError as exc:
                codes[exc.code().name] += 1
                details[exc.details() or ""] += 1
            slowest = max(slowest, (time.monotonic() - started) * 1000.0)
    print(json.dumps({"codes": codes, "by_pod": pods, "slowest_ms": slowest,
                      "details": details}), flush=True)  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]))
    else:
        timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 10.0
        client(sys.argv[2], sys.argv[3], int(sys.argv[4]), timeout)
