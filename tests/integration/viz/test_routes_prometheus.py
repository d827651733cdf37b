"""`viz routes` against the real Prometheus of a local cluster with HTTPRoutes (root; prometheus).

Cluster `lwvroute` (namespace `vroute`): `web` (500 for /fail, else 200) and `api` (the same
app), each the parent of one HTTPRoute (`web-all`, `api-all`), and `cli`, meshed. A bounded
load generator in cli-0 sends a known number of requests to each; the requests, success and
RPS `viz routes` prints must agree with the generator's counts within 5%.

Timing, for the 5%: the route series exist (a short warm-up) more than a window before the
figures are read, and the measured load starts 20 s after the warm-up, so a window that starts
in between holds the load and only the load; every view is asked in those 20 s (the fixture
fails if the machine was too slow). Prometheus' `increase()` then extrapolates only over the
gaps between the window's edges and the scrapes next to them (1 s scrapes: about 1 s of 60).
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.local.conftest import REPO, lacewing, run_name

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        shutil.which("prometheus") is None, reason="install Debian package prometheus"
    ),
]

NAME = run_name("lwvroute")
NS = "vroute"
WINDOW = 60.0


def _app(name: str) -> str:
    return f"""  - name: {name}
    namespace: {NS}
    ports: [{{name: http, port: 8080}}]
    command: [python, -m, tests.integration.viz.flaky, "8080"]
    env: {{PYTHONPATH: "{REPO}"}}
"""


def _route(name: str) -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}-all, namespace: {NS}}}
spec:
  parentRefs: [{{group: "", kind: Service, name: {name}, port: 8080}}]
  rules:
    - backendRefs: [{{name: {name}, port: 8080}}]
"""


CLUSTER = (
    "workloads:\n"
    + _app("web")
    + _app("api")
    + f"  - name: cli\n    namespace: {NS}\n    command: [sleep, infinity]\n"
    + _route("web")
    + _route("api")
)
LOADS = {"web": (300, 30.0, 4), "api": (150, 15.0, 0)}  # count, rate, every Kth to /fail


def load(target: str, count: int, rate: float, fail_every: int) -> dict[str, int]:
    result = lacewing(
        "local", "exec", "--name", NAME, "cli-0", "--",
        sys.executable, str(REPO / "tests/integration/viz/loadgen.py"),
        f"http://{target}:8080", str(count), str(rate), str(fail_every),
        timeout=count / rate + 30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    counts: dict[str, int] = json.loads(result.stdout)
    return counts


def routes(*args: str, output: str = "json") -> Any:
    result = lacewing("viz", "routes", *args, "-n", NS, "--local", NAME, "-t", "60s",
                      "-o", output)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if output == "json" else result.stdout


ASKED = {  # every view the tests check, asked at once (the window moves on)
    "cli": ("deploy/cli",),
    "web": ("svc/web",),
    "to-api": ("deploy/cli", "--to", "svc/api"),
    "srv-side": ("deploy/web",),
    "table": ("deploy/cli", "table"),
    "wide": ("deploy/cli", "wide"),
}
GAP = 20.0  # between the warm-up and the load: the time there is to ask everything


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    lacewing("local", "down", "--name", NAME)
    spec = tmp_path_factory.mktemp("vroute") / "cluster.yaml"
    spec.write_text(CLUSTER)
    try:
        up = lacewing("local", "up", "-f", str(spec), "--name", NAME)
        assert up.returncode == 0, up.stderr
        assert "prometheus: running (pid " in up.stderr, up.stderr
        warm = {t: load(t, 4, 10.0, 2 if t == "web" else 0) for t in LOADS}  # every series
        assert all(w["ok"] + w["failed"] == 4 for w in warm.values()), warm
        warmed = time.monotonic()  # scraped by warmed + 1 s
        time.sleep(GAP)
        loaded = time.monotonic()
        counts: dict[str, dict[str, int]] = {}
        threads = [threading.Thread(target=lambda t=t: counts.__setitem__(t, load(t, *LOADS[t])))
                   for t in LOADS]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # a window that starts after the warm-up's scrape and before the load
        time.sleep(max(1.0, warmed + 1.5 + WINDOW - time.monotonic()))
        out: dict[str, Any] = {}
        for key, args in ASKED.items():
            output = args[-1] if args[-1] in ("table", "wide") else "json"
            out[key] = routes(*(args[:-1] if output != "json" else args), output=output)
        assert time.monotonic() - WINDOW < loaded, "too slow: the window lost the load's start"
        yield {"sent": counts, **out}
    finally:
        lacewing("local", "down", "--name", NAME)


def _close(seen: float, expected: float) -> bool:
    return abs(seen - expected) <= 0.05 * expected


def test_routes_of_a_workload_agree_with_the_load_generator(seen: dict[str, Any]) -> None:
    sent = seen["sent"]
    rows = {r["route"]: r for r in seen["cli"]}
    print(f"generator: {sent}; viz routes: {rows}")
    assert set(rows) == {"web-all", "api-all"}, rows
    for target, row in (("web", rows["web-all"]), ("api", rows["api-all"])):
        answered = sent[target]["ok"] + sent[target]["failed"]
        assert answered == LOADS[target][0], sent  # every request got an answer
        assert row["service"] == target and row["parent_namespace"] == NS, row
        assert row["route_kind"] == "HTTPRoute" and row["parent_port"] == "8080", row
        assert _close(row["requests"], answered), (row, answered)
        assert _close(row["rps"] * WINDOW, answered), row
        assert abs(row["success"] - sent[target]["ok"] / answered) <= 0.01, (row, sent)
        assert row["latency_ms_p50"] is not None
        assert 0 < row["latency_ms_p50"] <= row["latency_ms_p95"] <= row["latency_ms_p99"], row
    assert rows["api-all"]["success"] == 1.0 and rows["web-all"]["success"] < 0.8


def test_routes_of_a_service_and_to_a_service(seen: dict[str, Any]) -> None:
    (web,) = seen["web"]  # every client's view of the routes of Service web
    assert web["route"] == "web-all" and _close(web["requests"], LOADS["web"][0]), web
    (api,) = seen["to-api"]
    assert api["route"] == "api-all" and _close(api["requests"], LOADS["api"][0]), api
    assert seen["srv-side"] == []  # web's pods took no route: they only served


def test_table_and_wide_output(seen: dict[str, Any]) -> None:
    lines = seen["table"].splitlines()
    assert lines[0].split() == ["ROUTE", "SERVICE", "SUCCESS", "RPS", "LATENCY_P50",
                                "LATENCY_P95", "LATENCY_P99"], lines  # fmt: skip
    assert [line.split()[:3] for line in lines[1:]] == [
        ["api-all", "api", "100.00%"],
        ["web-all", "web", lines[2].split()[2]],
    ], lines
    assert lines[2].split()[2].endswith("%") and float(lines[2].split()[2][:-1]) < 80, lines
    wide = seen["wide"].splitlines()
    assert wide[0].split() == ["ROUTE", "KIND", "SERVICE", "PORT", "EFFECTIVE_SUCCESS",
                               "EFFECTIVE_RPS", "ACTUAL_RPS", "LATENCY_P50", "LATENCY_P95",
                               "LATENCY_P99"], wide  # fmt: skip
    assert wide[1].split()[:4] == ["api-all", "HTTPRoute", "api", "8080"], wide
