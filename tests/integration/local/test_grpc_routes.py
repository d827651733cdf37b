"""GRPCRoutes on a real local cluster (root): grpcio clients and servers in meshed pods, the
routes in the cluster file, everything through the proxies with mutual TLS.

One cluster (`lwgr` + a suffix of the run's PID) for the module:

    greeter x1  grpcio (tests/integration/local/grpc_route_app.py)  Service greeter.lwgr:50051
    canary  x1  the same app                                        Service canary.lwgr:50051
    flaky   x1  the same app, every 5th Flaky call UNAVAILABLE       Service flaky.lwgr:50051
    bad     x1  the same app, every Flaky call UNAVAILABLE           Service bad.lwgr:50051
    cli     x1  idle: every call starts in this pod

Routes: greeter's sends lw.Route/Canary to canary and splits the rest 90/10 greeter/canary;
canary's has a 200 ms request timeout; flaky's and bad's retry UNAVAILABLE (limit 2). What is
asserted is what the grpcio client in cli-0 saw, and the client proxy's /metrics.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.local.conftest import REPO, lacewing, leftovers, run_name

pytestmark = pytest.mark.root

NAME = run_name("lwgr")
APP = ["python", "-m", "tests.integration.local.grpc_route_app", "server", "50051"]


def workload(name: str, **env: str) -> str:
    env_text = ", ".join(f"{k}: {json.dumps(v)}" for k, v in {"PYTHONPATH": str(REPO),
                                                              **env}.items())  # fmt: skip
    return f"""  - name: {name}
    namespace: lwgr
    ports: [{{name: grpc, port: 50051}}]
    command: {json.dumps(APP)}
    env: {{{env_text}}}
"""


ROUTES = """---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: greeter-split, namespace: lwgr}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter, port: 50051}]
  rules:
    - matches: [{method: {service: lw.Route, method: Canary}}]
      backendRefs: [{name: canary, port: 50051}]
    - backendRefs:
        - {name: greeter, port: 50051, weight: 90}
        - {name: canary, port: 50051, weight: 10}
---
apiVersion: policy.lacewing.io/v1beta1
kind: GRPCRoute
metadata:
  name: canary-deadline
  namespace: lwgr
  annotations: {timeout.lacewing.io/request: 200ms}
spec:
  parentRefs: [{kind: Service, name: canary, port: 50051}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: flaky-retry
  namespace: lwgr
  annotations: {retry.lacewing.io/grpc: "cancelled,unavailable", retry.lacewing.io/limit: "2"}
spec:
  parentRefs: [{kind: Service, name: flaky, port: 50051}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: bad-retry
  namespace: lwgr
  annotations: {retry.lacewing.io/grpc: unavailable, retry.lacewing.io/limit: "2"}
spec:
  parentRefs: [{kind: Service, name: bad, port: 50051}]
"""

CLUSTER = (
    "workloads:\n"
    + workload("greeter")
    + workload("canary")
    + workload("flaky", FAIL_EVERY="5")
    + workload("bad", FAIL_EVERY="1")
    + "  - name: cli\n    namespace: lwgr\n    command: [sleep, infinity]\n"
    + ROUTES
)


def exec_in(pod: str, *argv: str, timeout: float = 120) -> str:
    result = lacewing("local", "exec", "--name", NAME, pod, "--", *argv, timeout=timeout)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def calls(service: str, method: str, n: int, timeout: float = 10.0) -> dict[str, Any]:
    out = exec_in("cli-0", sys.executable, "-m", "tests.integration.local.grpc_route_app",
                  "client", f"{service}:50051", method, str(n), str(timeout))  # fmt: skip
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


def metric(name: str, **wanted: str) -> float:
    total = 0.0
    for line in exec_in(
        "cli-0", "curl", "-sS", "-m", "5", "http://127.0.0.1:4191/metrics"
    ).splitlines():
        if not line.startswith(name + "{"):
            continue
        labels = line[len(name) + 1 : line.rindex("}")]
        if all(f'{k}="{v}"' in labels for k, v in wanted.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    lacewing("local", "down", "--name", NAME)
    folder = tmp_path_factory.mktemp("grpc-routes")
    (folder / "cluster.yaml").write_text(CLUSTER)
    try:
        up = lacewing("local", "up", "-f", str(folder / "cluster.yaml"), "--name", NAME,
                      timeout=240)  # fmt: skip
        assert up.returncode == 0, up.stderr + up.stdout
        yield folder
    finally:
        lacewing("local", "down", "--name", NAME)
        assert leftovers(NAME) == []


def test_a_90_10_grpc_split_over_1000_calls_lands_within_5_points(cluster: Path) -> None:
    seen = calls("greeter", "Who", 1000)
    print("calls per pod:", seen["by_pod"])
    assert seen["codes"] == {"OK": 1000}, seen
    assert 850 <= seen["by_pod"].get("greeter-0", 0) <= 950, seen["by_pod"]
    assert seen["by_pod"]["greeter-0"] + seen["by_pod"]["canary-0"] == 1000
    canary = metric("outbound_grpc_route_backend_requests_total", route_name="greeter-split",
                    backend_name="canary")  # fmt: skip
    assert canary == seen["by_pod"]["canary-0"]


def test_a_method_match_picks_its_backend(cluster: Path) -> None:
    seen = calls("greeter", "Canary", 50)
    assert seen["by_pod"] == {"canary-0": 50}, seen


def test_a_deadline_route_answers_deadline_exceeded_in_time(cluster: Path) -> None:
    seen = calls("canary", "Slow", 3, timeout=5.0)
    print("slowest call:", seen["slowest_ms"], "ms")
    assert seen["codes"] == {"DEADLINE_EXCEEDED": 3}, seen
    assert seen["details"] == {"request timed out": 3}  # the proxy's, not the client's 5 s
    assert seen["slowest_ms"] < 400, seen  # 200 ms plus a meshed hop and a new channel
    assert metric("outbound_grpc_route_request_statuses_total", route_name="canary-deadline",
                  grpc_status="4") == 3  # fmt: skip


def test_retries_on_unavailable_within_the_budget(cluster: Path) -> None:
    seen = calls("flaky", "Flaky", 1000)
    assert seen["codes"].get("OK", 0) >= 990, seen["codes"]  # >= 99% succeed
    (answer,) = calls("flaky", "Count", 1)["by_pod"]  # the Flaky calls flaky-0 received
    received = int(answer)
    retries = metric("outbound_grpc_route_retry_requests_total", route_name="flaky-retry")
    print("flaky: ok", seen["codes"].get("OK"), "of 1000, retries", retries)
    assert retries == received - 1000 > 0, (retries, received)
    assert retries <= 0.2 * 1000 + 100

    seen = calls("bad", "Flaky", 300)
    assert seen["codes"] == {"UNAVAILABLE": 300}, seen["codes"]
    retries = metric("outbound_grpc_route_retry_requests_total", route_name="bad-retry")
    overflow = metric("outbound_grpc_route_retry_overflow_total", route_name="bad-retry")
    print("bad: retries", retries, "overflow", overflow)
    assert 0 < retries <= 0.2 * 300 + 100 + 1, retries  # the budget caps them, not the limit
    assert overflow > 0
