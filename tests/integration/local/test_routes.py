"""Traffic management on a real local cluster (root): splits, a live re-split, timeouts,
retries within budget, all through meshed pods' proxies with mutual TLS.

One cluster (`lwrt`) is shared by the module's tests, in file order:

    web     x1  answers its pod name                     Service web.rt:8080 (the parent)
    canary  x1  answers its pod name                     Service canary.rt:8080
    slow    x1  answers after 2 s                        Service slow.rt:8080
    flaky   x1  answers every 5th GET 503, every POST 503  Service flaky.rt:8080
    faulty  x1  answers its pod name                     Service faulty.rt:8080
    brittle x2  brittle-1 answers 503 until healed       Service brittle.rt:8080
    patient x1  answers after 2 s                        Service patient.rt:8080, annotated
    steady  x1  answers every 5th GET 503                Service steady.rt:8080, annotated
    shaky   x2  unmeshed; shaky-1 resets every GET, both reset every POST   annotated
    refuser x2  unmeshed; refuser-1 refuses connections from other pods     annotated
    lonely  x1  answers its pod name; scaled to 0 and back  Service lonely.rt:8080
    cli     x1  idle: every request starts in this pod

The cluster file carries the routes as HTTPRoute documents (web 90/10 canary; slow with a
200 ms request timeout; flaky with retries; faulty with 10% injected aborts; brittle with
failure accrual after 3 consecutive failures); patient's and steady's Services carry
timeout / retry annotations in the cluster file (`serviceAnnotations`) and no route (shaky's
and refuser's retry 5xx: a connection that fails before an answer is that 502): their
default routes come from those, as a Kubernetes Service's annotations give;
`lacewing local routes` replaces them while traffic runs. What is asserted is what the
client in cli-0 saw, and the client proxy's own /metrics, as a user would read them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.local.conftest import REPO, lacewing, leftovers, run_name
from tests.integration.local.test_mesh_traffic import parse_records

pytestmark = pytest.mark.root

NAME = run_name("lwrt")
APP = ["python", "-m", "tests.integration.local.route_app", "8080"]


def workload(name: str, replicas: int = 1, notes: dict[str, str] | None = None,
             meshed: bool = True, **env: str) -> str:  # fmt: skip
    env_text = ", ".join(f"{k}: {json.dumps(v)}" for k, v in {"PYTHONPATH": str(REPO),
                                                              **env}.items())  # fmt: skip
    annotations = f"    serviceAnnotations: {json.dumps(notes)}\n" if notes else ""
    return f"""  - name: {name}
    namespace: rt
    replicas: {replicas}
    meshed: {json.dumps(meshed)}
    ports: [{{name: http, port: 8080}}]
    command: {json.dumps(APP)}
    env: {{{env_text}}}
{annotations}"""


def routes(web: int, canary: int) -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web-split, namespace: rt}}
spec:
  parentRefs: [{{group: "", kind: Service, name: web, port: 8080}}]
  rules:
    - backendRefs:
        - {{name: web, port: 8080, weight: {web}}}
        - {{name: canary, port: 8080, weight: {canary}}}
---
apiVersion: policy.lacewing.io/v1beta1
kind: HTTPRoute
metadata: {{name: slow-timeout, namespace: rt}}
spec:
  parentRefs: [{{kind: Service, name: slow, port: 8080}}]
  rules:
    - timeouts: {{request: 200ms}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: flaky-retry
  namespace: rt
  annotations: {{retry.lacewing.io/http: 5xx, retry.lacewing.io/limit: "2"}}
spec:
  parentRefs: [{{kind: Service, name: flaky, port: 8080}}]
  rules:
    - backendRefs: [{{name: flaky, port: 8080}}]
---
apiVersion: policy.lacewing.io/v1beta1
kind: HTTPRoute
metadata: {{name: faulty-abort, namespace: rt}}
spec:
  parentRefs: [{{kind: Service, name: faulty, port: 8080}}]
  rules:
    - filters:
        - type: FaultInjection
          faultInjection: {{abort: {{percent: 10, httpStatus: 500}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: brittle-accrual
  namespace: rt
  annotations:
    balancer.lacewing.io/failure-accrual: consecutive
    balancer.lacewing.io/failure-accrual-consecutive-max-failures: "3"
spec:
  parentRefs: [{{kind: Service, name: brittle, port: 8080}}]
"""


RETRY_5XX = {"retry.lacewing.io/http": "5xx", "retry.lacewing.io/limit": "2"}
CLUSTER = (
    "workloads:\n"
    + workload("web")
    + workload("canary")
    + workload("slow", SLEEP_MS="2000")
    + workload("flaky", FAIL_EVERY="5", POST_STATUS="503")
    + workload("faulty")
    + workload("brittle", replicas=2, FAIL_REPLICA="1")
    + workload("patient", notes={"timeout.lacewing.io/request": "300ms"}, SLEEP_MS="2000")
    + workload(
        "steady",
        notes={"retry.lacewing.io/http": "5xx", "retry.lacewing.io/limit": "2"},
        FAIL_EVERY="5",
    )
    + workload(
        "shaky", replicas=2, notes=RETRY_5XX, meshed=False, RESET_REPLICA="1", RESET_POST="1"
    )
    + workload("refuser", replicas=2, notes=RETRY_5XX, meshed=False, REFUSE_REPLICA="1")
    + workload("lonely")
    + "  - name: cli\n    namespace: rt\n    command: [sleep, infinity]\n"
    + routes(90, 10)
)


def exec_in(pod: str, *argv: str, timeout: float = 60) -> str:
    result = lacewing("local", "exec", "--name", NAME, pod, "--", *argv, timeout=timeout)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def client(url: str, count: int, threads: int = 1, post: int = 0) -> dict[str, Any]:
    out = exec_in("cli-0", sys.executable, "-m", "tests.integration.local.route_client", url,
                  str(count), str(threads), str(post))  # fmt: skip
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


def metric(pod: str, name: str, **wanted: str) -> float:
    total = 0.0
    for line in exec_in(
        pod, "curl", "-sS", "-m", "5", "http://127.0.0.1:4191/metrics"
    ).splitlines():
        if not line.startswith(name + "{"):
            continue
        labels = line[len(name) + 1 : line.rindex("}")]
        if all(f'{k}="{v}"' in labels for k, v in wanted.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def stats(service: str, pod: str = "cli-0") -> dict[str, int]:
    """The app's request counts by method (GET /stats; an injected abort is asked again)."""
    for _ in range(20):
        result = lacewing("local", "exec", "--name", NAME, pod, "--", "curl", "-sSf",
                          "-m", "5", f"http://{service}:8080/stats")  # fmt: skip
        if result.returncode == 0:
            data: dict[str, int] = json.loads(result.stdout)
            return data
    raise AssertionError(f"{service}/stats never answered 200")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    lacewing("local", "down", "--name", NAME)
    folder = tmp_path_factory.mktemp("routes")
    (folder / "cluster.yaml").write_text(CLUSTER)
    try:
        up = lacewing("local", "up", "-f", str(folder / "cluster.yaml"), "--name", NAME)
        assert up.returncode == 0, up.stderr + up.stdout
        yield folder
    finally:
        lacewing("local", "down", "--name", NAME)
        assert leftovers(NAME) == []


def test_a_90_10_split_lands_within_5_points(cluster: Path) -> None:
    seen = client("http://web:8080/", 500, threads=4)
    assert seen["statuses"] == {"200": 2000}, seen["statuses"]
    canary = seen["bodies"].get("canary-0", 0)
    assert seen["bodies"].get("web-0", 0) + canary == 2000
    print(f"90/10 split over 2000 requests: {seen['bodies']}")
    assert 100 <= canary <= 300, seen["bodies"]  # 10% +- 5 points
    backend = metric("cli-0", "outbound_http_route_backend_requests_total",
                     route_name="web-split", backend_name="canary")  # fmt: skip
    assert backend == canary


def test_a_new_split_applies_within_a_second_without_failures(cluster: Path) -> None:
    (cluster / "50-50.yaml").write_text(routes(50, 50))
    background = subprocess.Popen(
        [sys.executable, "-m", "lacewing.cli.main", "local", "exec", "--name", NAME, "cli-0",
         "--", sys.executable, "-m", "tests.integration.local.keepalive_client",
         "http://web:8080/", "4s", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        time.sleep(1.5)
        changed = lacewing("local", "routes", "-f", str(cluster / "50-50.yaml"), "--name", NAME)
        applied_by = time.time() + 1.0
        assert changed.returncode == 0, changed.stderr
        assert f"local cluster '{NAME}' now has 5 route(s)" in changed.stdout
        out, err = background.communicate(timeout=30)
        assert background.returncode == 0, err
    finally:
        if background.poll() is None:
            background.kill()
            background.wait()
    records, _done = parse_records(out)
    assert [r for r in records if "error" in r] == []  # no request failed across the change
    after = Counter(r["pod"] for r in records if r["t"] >= applied_by)
    assert sum(after.values()) >= 200, after
    share = after["canary-0"] / sum(after.values())
    print(f"50/50 from 1 s after the change: {dict(after)}; {len(records)} requests, no errors")
    assert 0.4 <= share <= 0.6, after  # the 50/50 split within 1 s of the change


def test_a_200ms_timeout_answers_504_in_time(cluster: Path) -> None:
    seen = client("http://slow:8080/", 5)
    print(f"504 after {[round(x, 3) for x in seen['seconds']]} s")
    assert seen["statuses"] == {"504": 5}
    assert all(0.2 <= s <= 0.26 for s in seen["seconds"]), seen["seconds"]


def test_retries_hide_a_flaky_backend_within_budget_and_skip_big_bodies(cluster: Path) -> None:
    seen = client("http://flaky:8080/", 250, threads=4)
    assert seen["statuses"].get("200", 0) >= 990, seen["statuses"]
    retries = metric("cli-0", "outbound_http_route_retry_requests_total", route_name="flaky-retry")
    print(f"flaky: {seen['statuses']} with {retries:g} retries")
    assert 150 <= retries <= 0.2 * 1000 + 100  # every 5th request of ~1200 failed once
    before = stats("flaky")
    post = client("http://flaky:8080/", 1, post=1024 * 1024)
    after = stats("flaky")
    assert post["statuses"] == {"503": 1}
    assert after.get("POST", 0) - before.get("POST", 0) == 1  # a 1 MB body is not replayed


def test_injected_aborts_hit_their_percentage(cluster: Path) -> None:
    seen = client("http://faulty:8080/", 500, threads=4)
    print(f"faulty: {seen['statuses']}")
    assert seen["statuses"].get("200", 0) + seen["statuses"].get("500", 0) == 2000
    assert 140 <= seen["statuses"].get("500", 0) <= 260  # 10% within 3 points
    assert (
        stats("faulty")["GET"] == seen["statuses"]["200"]
    )  # aborted requests never reached the app


def test_a_failing_endpoint_is_ejected_and_probed_back_after_it_recovers(cluster: Path) -> None:
    seen = client("http://brittle:8080/", 300)
    broken = stats("127.0.0.1", pod="brittle-1")["GET"]  # asked in its pod: no proxy between
    print(f"brittle: {seen['statuses']}, brittle-1 got {broken}")
    assert 3 <= broken <= 4  # ejected after 3 consecutive 503s (one probe if 1 s went by)
    assert seen["statuses"] == {"200": 300 - broken, "503": broken}
    exec_in("brittle-1", "curl", "-sS", "-m", "5", "-X", "POST", "http://127.0.0.1:8080/heal")
    time.sleep(1.6)  # past the first ejection's backoff (1 s, up to 1.5 s with its jitter)
    again = client("http://brittle:8080/", 100)
    assert again["statuses"] == {"200": 100}
    assert stats("127.0.0.1", pod="brittle-1")["GET"] > broken  # the probe reached it: back


def test_service_annotations_in_the_cluster_file_give_a_default_route(cluster: Path) -> None:
    seen = client("http://patient:8080/", 5)
    print(f"patient (Service timeout 300ms): 504 after {[round(x, 3) for x in seen['seconds']]} s")
    assert seen["statuses"] == {"504": 5}
    assert all(0.3 <= s <= 0.36 for s in seen["seconds"]), seen["seconds"]
    seen = client("http://steady:8080/", 250, threads=4)
    retries = metric("cli-0", "outbound_http_route_retry_requests_total",
                     route_name="service-default", parent_name="steady")  # fmt: skip
    print(f"steady (Service retries 5xx): {seen['statuses']} with {retries:g} retries")
    assert seen["statuses"].get("200", 0) >= 990, seen["statuses"]
    assert 150 <= retries <= 0.2 * 1000 + 100  # every 5th of ~1200 attempts failed once
    assert stats("steady")["GET"] == 1000 + retries  # the app saw each retry


def test_connections_failing_before_an_answer_are_retried_on_the_other_replica(
    cluster: Path,
) -> None:
    big = client("http://shaky:8080/", 1, post=100 * 1024)  # both replicas reset every POST
    posts = sum(stats("127.0.0.1", pod=f"shaky-{i}").get("POST", 0) for i in (0, 1))
    print(f"shaky: a 100 KiB POST got {big['statuses']}, reached the apps {posts} time(s)")
    assert big["statuses"] == {"502": 1}
    assert posts == 1  # more than the 64 KiB replay buffer: not retried
    time.sleep(2.0)  # the replica it reset is back from its ejection (1 s, up to 1.5 s)

    seen = client("http://shaky:8080/", 50, threads=4)
    retries = metric("cli-0", "outbound_http_route_retry_requests_total",
                     route_name="service-default", parent_name="shaky")  # fmt: skip
    resets = stats("127.0.0.1", pod="shaky-1").get("reset", 0)
    print(f"shaky (shaky-1 resets every GET): {seen['statuses']}, {resets} resets, "
          f"{retries:g} retries")  # fmt: skip
    assert seen["statuses"].get("200", 0) >= 198, seen["statuses"]  # >= 99% of 200
    assert resets >= 1 and retries == resets  # each reset attempt was retried, once
    assert stats("127.0.0.1", pod="shaky-0")["GET"] == seen["statuses"]["200"]

    seen = client("http://refuser:8080/", 50, threads=4)
    retries = metric("cli-0", "outbound_http_route_retry_requests_total",
                     route_name="service-default", parent_name="refuser")  # fmt: skip
    print(f"refuser (refuser-1 refuses connections): {seen['statuses']}, {retries:g} retries")
    assert seen["statuses"].get("200", 0) >= 198, seen["statuses"]
    assert retries >= 1
    assert stats("127.0.0.1", pod="refuser-1").get("GET", 0) == 0  # it never got one
    assert stats("127.0.0.1", pod="refuser-0")["GET"] == seen["statuses"]["200"]


def _until_lonely_answers(status: str, failure: str) -> None:
    """Ask `lonely` once every 0.2 s until it answers `status`, failing after 10 s."""
    deadline = time.monotonic() + 10
    while client("http://lonely:8080/", 1)["statuses"] != {status: 1}:
        assert time.monotonic() < deadline, failure
        time.sleep(0.2)


def test_a_service_scaled_to_zero_answers_503_at_once_and_heals(cluster: Path) -> None:
    down = lacewing("local", "scale", "lonely", "--replicas", "0", "--name", NAME)
    assert down.returncode == 0, down.stderr + down.stdout
    _until_lonely_answers("503", "the client's proxy never learnt lonely is empty")
    seen = client("http://lonely:8080/", 5)
    print(f"lonely at 0 replicas: {seen['statuses']} after "
          f"{[round(x, 3) for x in seen['seconds']]} s")  # fmt: skip
    assert seen["statuses"] == {"503": 5}
    assert all(s < 3.0 for s in seen["seconds"]), seen["seconds"]  # no 1 s connect timeout
    head = exec_in("cli-0", "curl", "-sS", "-o", "/dev/null", "-D", "-", "-m", "10",
                   "http://lonely:8080/")  # fmt: skip
    assert "l5d-proxy-error: service lonely has no endpoints" in head, head
    assert metric("cli-0", "response_total", direction="outbound", dst_service="lonely",
                  dst_namespace="rt", status_code="503") >= 7  # fmt: skip

    up = lacewing("local", "scale", "lonely", "--replicas", "1", "--name", NAME)
    assert up.returncode == 0, up.stderr + up.stdout
    _until_lonely_answers("200", "lonely did not heal")
    assert client("http://lonely:8080/", 20)["statuses"] == {"200": 20}
