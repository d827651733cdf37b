"""HTTP/1 between two meshed pods travels as HTTP/2 on one mTLS connection (root).

    cli-0 (python http.client, HTTP/1.1 keep-alive) -> cli's proxy ==h2, mTLS==> srv's proxy
        -> seen_app (answers what it saw: request line, Host, body)

What a user can check: the app sees HTTP/1.1 requests with the client's Host and body and no
`l5d-orig-proto`; srv's proxy counted the requests as inbound, mTLS, from cli's identity, but
only one mTLS connection from cli was opened for four concurrent keep-alive clients
(`tcp_open_total`); a chunked response comes back chunked; a route that retries 5xx still
hides a flaky answer (the retry metric counts it).
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

NAME = run_name("lwh1h2")
CLIENT_ID = "cli.th12.serviceaccount.identity.lacewing.cluster.local"
APP = ["python", "-m", "tests.integration.local.seen_app", "8080"]
CLUSTER = f"""
workloads:
  - name: srv
    namespace: th12
    ports: [{{name: http, port: 8080}}]
    command: {json.dumps(APP)}
    env: {{PYTHONPATH: "{REPO}"}}
    serviceAnnotations: {{retry.lacewing.io/http: 5xx, retry.lacewing.io/limit: "2"}}
  - name: cli
    namespace: th12
    command: [sleep, infinity]
    proxyEnv: {{LACEWING_PROXY_HTTP1_OVER_H2: "1"}}
"""

# run inside cli-0: four threads, each one keep-alive connection, five requests each
CLIENT = r"""
import http.client, json, sys, threading
out, lock = [], threading.Lock()
def run():
    c = http.client.HTTPConnection("srv.th12.svc.cluster.local", 8080, timeout=20)
    for i in range(5):
        c.request("POST", "/echo", body=b"body-%d" % i, headers={"Host": "srv.th12:8080"})
        r = c.getresponse()
        data = r.read()
        with lock:
            out.append({"status": r.status, "seen": json.loads(data), "will_close": r.will_close})
    c.request("GET", "/chunked", headers={"Host": "srv.th12:8080"})
    r = c.getresponse()
    with lock:
        out.append({"status": r.status, "chunked": r.chunked, "seen": json.loads(r.read())})
threads = [threading.Thread(target=run) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
c = http.client.HTTPConnection("srv.th12.svc.cluster.local", 8080, timeout=20)
for i in range(6):
    c.request("GET", "/flaky", headers={"Host": "srv.th12:8080"})
    r = c.getresponse(); r.read()
    out.append({"flaky": r.status})
print(json.dumps(out))
"""

_SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def exec_in(pod: str, *argv: str, timeout: float = 120) -> str:
    result = lacewing("local", "exec", "--name", NAME, pod, "--", *argv, timeout=timeout)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def metrics(pod: str, name: str) -> list[tuple[dict[str, str], float]]:
    found = []
    text = exec_in(pod, "curl", "-sS", "-m", "5", "http://127.0.0.1:4191/metrics")
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            found.append((dict(_LABEL.findall(match.group(2))), float(match.group(3))))
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    lacewing("local", "down", "--name", NAME)
    spec = tmp_path_factory.mktemp("h1h2") / "cluster.yaml"
    spec.write_text(CLUSTER)
    try:
        up = lacewing("local", "up", "-f", str(spec), "--name", NAME)
        assert up.returncode == 0, up.stderr + up.stdout
        yield spec
    finally:
        lacewing("local", "down", "--name", NAME)


def test_http1_requests_travel_as_h2_on_one_mtls_connection(cluster: Path) -> None:
    out = json.loads(exec_in("cli-0", sys.executable, "-c", CLIENT).strip().splitlines()[-1])
    posts = [r for r in out if "seen" in r and r["seen"]["line"].startswith("POST")]
    chunked = [r for r in out if "chunked" in r]
    flaky = [r["flaky"] for r in out if "flaky" in r]
    assert len(posts) == 20 and all(r["status"] == 200 and not r["will_close"] for r in posts)
    for r in posts:  # the app saw the HTTP/1.1 request as sent, nothing of the h2 leg
        seen = r["seen"]
        assert seen["line"] == "POST /echo HTTP/1.1", seen
        assert seen["host"] == "srv.th12:8080" and seen["body"].startswith("body-"), seen
        assert seen["orig"] is None, seen
    assert len(chunked) == 4 and all(r["status"] == 200 and r["chunked"] for r in chunked)
    assert all(r["seen"]["line"] == "GET /chunked HTTP/1.1" for r in chunked)
    assert flaky == [200] * 6  # every other answer was a 503 the route's retry hid
    retries = sum(v for labels, v in metrics("cli-0", "outbound_http_route_retry_requests_total"))
    assert retries >= 3
    # srv's proxy: 30 requests inbound over mTLS from cli's identity ...
    inbound = sum(
        v for labels, v in metrics("srv-0", "request_total")
        if labels.get("direction") == "inbound" and labels.get("tls") == "true"
        and labels.get("client_id") == CLIENT_ID
    )  # fmt: skip
    assert inbound == 24 + 6 + retries
    # ... on one mTLS connection from cli, though four clients had requests in flight at once
    opened = sum(
        v for labels, v in metrics("srv-0", "tcp_open_total")
        if labels.get("direction") == "inbound" and labels.get("peer") == "src"
        and labels.get("client_id") == CLIENT_ID
    )  # fmt: skip
    assert opened == 1
