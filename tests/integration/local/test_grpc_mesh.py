"""HTTP/2 and gRPC through meshed pods of a real local cluster (root): mutual TLS between the
proxies (ALPN h2), streams balanced one by one, gRPC statuses in the metrics.

One cluster (`tlgrpc` + a suffix of the run's PID) for the module:

    greeter  x3  meshed grpcio server (tests/integration/local/grpc_app.py)  Service greeter.tgrpc
    h2web    x1  meshed h2c server that only speaks HTTP/2                    Service h2web.tgrpc
    cli      x1  meshed, idle: the client pod (curl, and a grpcio client)
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.local.conftest import REPO, lacewing, run_name

pytestmark = pytest.mark.root

NAME = run_name("tlgrpc")
CLIENT_ID = "cli.tgrpc.serviceaccount.identity.lacewing.cluster.local"
GREETER_ID = "greeter.tgrpc.serviceaccount.identity.lacewing.cluster.local"
APP = ["python", "-m", "tests.integration.local.grpc_app"]
CLUSTER = f"""
workloads:
  - name: greeter
    namespace: tgrpc
    replicas: 3
    ports: [{{name: grpc, port: 50051}}]
    command: {json.dumps([*APP, "server", "50051"])}
    env: {{PYTHONPATH: "{REPO}"}}
  - name: h2web
    namespace: tgrpc
    ports: [{{name: http, port: 8080}}]
    command: {json.dumps([*APP, "h2c", "8080"])}
    env: {{PYTHONPATH: "{REPO}"}}
  - name: cli
    namespace: tgrpc
    command: [sleep, infinity]
"""
CALLS = 600

_SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def exec_in(pod: str, *argv: str, timeout: float = 120) -> str:
    result = lacewing("local", "exec", "--name", NAME, pod, "--", *argv, timeout=timeout)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def metrics(pod: str, name: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for line in exec_in(pod, "curl", "-sS", "-m", "5", "http://127.0.0.1:4191/metrics").split("\n"):
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            found.append((dict(_LABEL.findall(match.group(2))), float(match.group(3))))
    return found


def total(samples: list[tuple[dict[str, str], float]], **want: str) -> float:
    return sum(v for labels, v in samples if all(labels.get(k) == x for k, x in want.items()))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    lacewing("local", "down", "--name", NAME)
    spec: Path = tmp_path_factory.mktemp("grpc") / "cluster.yaml"
    spec.write_text(CLUSTER)
    try:
        up = lacewing("local", "up", "-f", str(spec), "--name", NAME, timeout=240)
        assert up.returncode == 0, up.stderr + up.stdout
        yield
    finally:
        lacewing("local", "down", "--name", NAME)


def test_curl_http2_prior_knowledge_through_the_meshed_pair(cluster: None) -> None:
    out = exec_in("cli-0", "curl", "-sS", "-m", "10", "--http2-prior-knowledge",
                  "-w", "%{http_code} %{http_version}", "http://h2web:8080/hello")  # fmt: skip
    assert out == "h2web-0 /hello\n200 2"
    # h2web's inbound proxy served it over mutual TLS from cli's identity (the app only
    # speaks HTTP/2, so the answer itself shows HTTP/2 went the whole way)
    inbound = metrics("h2web-0", "response_total")
    assert total(inbound, direction="inbound", tls="true", client_id=CLIENT_ID,
                 status_code="200", classification="success") >= 1  # fmt: skip


def test_one_grpc_channel_spreads_over_three_replicas_and_every_call_kind_works(
    cluster: None,
) -> None:
    argv = [sys.executable, "-m", "tests.integration.local.grpc_app", "client", "greeter:50051",
            str(CALLS)]  # fmt: skip
    result = json.loads(exec_in("cli-0", *argv, timeout=180).strip().splitlines()[-1])
    by_pod = result["unary_by_pod"]
    print("calls per replica:", by_pod)
    assert sorted(by_pod) == ["greeter-0", "greeter-1", "greeter-2"], by_pod
    assert sum(by_pod.values()) == CALLS
    # every replica gets at least 25% (the balancer treats latencies within 3x as equal, so
    # one slow response on a busy machine no longer starves a replica: docs/http2.md)
    assert min(by_pod.values()) >= CALLS // 4, by_pod
    assert result["fail"] == "INVALID_ARGUMENT"
    assert result["server_stream"] == ["0", "1", "2", "3", "4"]
    assert result["client_stream"] == str(4 * 1024 * 1024 + 3)  # a 4 MiB message went up
    assert result["bidi"] == ["a", "b", "c"]
    assert result["unimplemented"] == "UNIMPLEMENTED"
    assert result["metadata"] == "hello"  # metadata both ways, trailing metadata included
    assert result["deadline"] == "DEADLINE_EXCEEDED"  # grpc-timeout went through

    # cli's outbound proxy counted every call, classified by grpc-status, over mutual TLS
    out = metrics("cli-0", "response_total")
    grpc_out = [(labels, v) for labels, v in out
                if labels.get("direction") == "outbound" and "grpc_status" in labels]  # fmt: skip
    assert grpc_out, "no gRPC responses in cli's outbound metrics"
    assert all(labels["tls"] == "true" and labels["server_id"] == GREETER_ID
               for labels, _ in grpc_out)  # fmt: skip
    assert total(grpc_out, grpc_status="0", classification="success") >= CALLS + 4
    assert total(grpc_out, grpc_status="3", classification="failure") == 1
    assert total(grpc_out, grpc_status="12", classification="failure") == 1
    # and each replica's inbound proxy saw its share from cli's identity
    served = {
        pod: total(
            metrics(pod, "response_total"),
            direction="inbound",
            tls="true",
            client_id=CLIENT_ID,
            grpc_status="0",
        )
        for pod in by_pod
    }
    assert all(served[pod] >= by_pod[pod] for pod in by_pod), (served, by_pod)
