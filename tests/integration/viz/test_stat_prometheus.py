"""`viz stat` against the real Prometheus a local cluster runs (root; Debian package prometheus).

One cluster (`lwvizt`): `srv` x2 (500 for /fail, else 200) and `cli`, meshed, in `vtest`. A
bounded load generator in cli-0 sends a known number of requests; every figure `viz stat`
prints must agree with the generator's own counts within 5%, and the cluster's Prometheus must
be gone, by PID, once the cluster is down.

Timing, for the 5%: a warm-up makes every series exist (a counter's first scraped value is no
increase Prometheus can see), the measured load starts `GAP` s after it, and every windowed
view is asked while its `WINDOW` starts between the two and ends after the load's last scrape:
the window holds the load and only the load, and `increase()` extrapolates over no more than
the scrape gaps at its edges (1 s scrapes). The fixture fails, saying so, if the machine was
too slow to leave such a moment; each view checks it is still inside it.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.local.conftest import REPO, alive, lacewing, leftovers, run_name

from lacewing.viz.prometheus import NodePrometheus

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        shutil.which("prometheus") is None, reason="install Debian package prometheus"
    ),
]

NAME = run_name("lwvizt")
NS = "vtest"
STATE = Path("/run/lacewing/local") / NAME
CLUSTER = f"""
workloads:
  - name: srv
    namespace: {NS}
    replicas: 2
    ports: [{{name: http, port: 8080}}]
    command: [python, -m, tests.integration.viz.flaky, "8080"]
    env: {{PYTHONPATH: "{REPO}"}}
  - name: cli
    namespace: {NS}
    command: [sleep, infinity]
"""
IDENTITY_SUFFIX = "serviceaccount.identity.lacewing.cluster.local"
COUNT, RATE, FAIL_EVERY = 600, 30.0, 4  # 20 s of load, 75% success
WINDOW, GAP = 45.0, 22.0  # the views' `-t` (s), and the quiet time between warm-up and load


def load(count: int, rate: float) -> dict[str, int]:
    result = lacewing(
        "local", "exec", "--name", NAME, "cli-0", "--",
        sys.executable, str(REPO / "tests/integration/viz/loadgen.py"),
        "http://srv:8080", str(count), str(rate), str(FAIL_EVERY),
        timeout=count / rate + 30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    counts: dict[str, int] = json.loads(result.stdout)
    return counts


def stat(*args: str) -> list[dict[str, Any]]:
    result = lacewing("viz", "stat", *args, "-n", NS, "--local", NAME, "-o", "json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    lacewing("local", "down", "--name", NAME)
    spec = tmp_path_factory.mktemp("viz") / "cluster.yaml"
    spec.write_text(CLUSTER)
    try:
        up = lacewing("local", "up", "-f", str(spec), "--name", NAME)
        assert up.returncode == 0, up.stderr
        assert "prometheus: running (pid " in up.stderr, up.stderr
        pid = int((STATE / "prometheus" / "prometheus.pid").read_text())
        # the series must exist (and be scraped) before the measured load: a counter's value
        # at its first scrape is not an increase Prometheus can see
        warm = load(20, 20.0)
        warm_end = time.monotonic()
        time.sleep(GAP)
        during: list[list[dict[str, Any]]] = []
        probe = threading.Timer(10.0, lambda: during.append(stat("deploy/srv", "-t", "5s")))
        probe.start()
        load_start = time.monotonic()
        sent = load(COUNT, RATE)
        load_end = time.monotonic()
        probe.join()
        opens = max(warm_end + 2.0, load_end + 4.0 - WINDOW) + WINDOW  # after the last scrapes
        closes = load_start + WINDOW - 1.0  # the window must not reach back past the load
        if opens >= closes:
            pytest.fail(f"the load took {load_end - load_start:.1f}s: no {WINDOW:g}s window "
                        "holds it alone (machine too slow?)")  # fmt: skip
        time.sleep(max(0.0, opens - time.monotonic()))
        yield {"warm": warm, "sent": sent, "during": during, "pid": pid, "closes": closes}
    finally:
        lacewing("local", "down", "--name", NAME)


def _close(seen: float, expected: float) -> bool:
    return abs(seen - expected) <= 0.05 * expected


def windowed(traffic: dict[str, Any], *args: str) -> list[dict[str, Any]]:
    """`viz stat ARGS -t WINDOW`, asked while the window holds the measured load alone."""
    if time.monotonic() >= traffic["closes"]:
        pytest.fail("the views took too long: the window no longer holds the load alone")
    return stat(*args, "-t", f"{WINDOW:g}s")


def test_deploy_stat_agrees_with_the_load_generator(traffic: dict[str, Any]) -> None:
    sent, warm = traffic["sent"], traffic["warm"]
    # the warm-up's requests are in each series' first scraped value, which increase() does
    # not count: the window holds the measured load
    expected = sent["ok"] + sent["failed"]
    assert expected == COUNT, sent  # every request got an answer
    rows = {r["name"]: r for r in windowed(traffic, "deploy")}
    assert set(rows) == {"srv", "cli"}, rows
    srv = rows["srv"]
    print(f"generator: {expected} answered ({sent}, warm-up {warm}); viz stat: {srv}")
    assert srv["meshed"] == "2/2" and rows["cli"]["meshed"] == "1/1"
    assert _close(srv["requests"], expected), (srv, expected)
    assert _close(srv["rps"] * WINDOW, expected), srv
    ok_share = sent["ok"] / expected
    assert abs(srv["success"] - ok_share) <= 0.02, (srv, ok_share)
    assert srv["tls"] == 1.0  # every request was mutual TLS between the proxies
    assert rows["cli"]["requests"] == 0  # cli served nothing
    # while the load ran, the latency quantiles were there, in order
    (during,) = traffic["during"]
    assert during[0]["rps"] > 0, during
    p50, p95, p99 = (during[0][f"latency_ms_p{q}"] for q in (50, 95, 99))
    assert p50 is not None and 0 < p50 <= p95 <= p99, during


def test_other_resources_and_edges_see_the_same_traffic(traffic: dict[str, Any]) -> None:
    sent = traffic["sent"]
    expected = sent["ok"] + sent["failed"]
    pods = {r["name"]: r for r in windowed(traffic, "pod")}
    assert _close(pods["srv-0"]["requests"] + pods["srv-1"]["requests"], expected), pods
    assert pods["srv-0"]["requests"] > 0 and pods["srv-1"]["requests"] > 0, pods  # balanced
    (ns,) = [r for r in windowed(traffic, "ns") if r["name"] == NS]
    assert _close(ns["requests"], expected), ns
    (svc,) = windowed(traffic, "svc")  # seen from the client's outbound side
    assert svc["name"] == "srv" and _close(svc["requests"], expected), svc
    (to,) = windowed(traffic, "deploy", "--to", "svc/srv")
    assert to["name"] == "cli" and _close(to["requests"], expected), to
    (src,) = windowed(traffic, "deploy", "--from", "deploy/cli")
    assert src["name"] == "srv" and _close(src["requests"], expected), src
    (au,) = windowed(traffic, "authority")
    assert au["name"] == "srv:8080" and _close(au["requests"], expected), au


def test_table_output(traffic: dict[str, Any]) -> None:
    result = lacewing("viz", "stat", "deploy", "-n", NS, "--local", NAME)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99",
        "TCP_CONN",
    ], result.stdout  # fmt: skip
    assert [line.split()[:2] for line in lines[1:]] == [["cli", "1/1"], ["srv", "2/2"]]


def test_edges(traffic: dict[str, Any]) -> None:
    result = lacewing("viz", "edges", "deploy", "-n", NS, "--local", NAME, "-o", "wide")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "SRC   DST   SRC_NS   DST_NS   SECURED   SERVER_ID",
        f"cli   srv   {NS}    {NS}    √         srv.{NS}.{IDENTITY_SUFFIX}",
    ], result.stdout


def test_control_plane_is_scraped_too(traffic: dict[str, Any]) -> None:
    prom = NodePrometheus(f"lwl-{NAME}-node")
    up = {
        labels["component"]: value for labels, value in prom.query('up{job="lacewing-controller"}')
    }
    assert up == {"identity": 1.0, "destination": 1.0, "policy": 1.0}, up
    # every meshed proxy got its certificate from identity; cli's proxy streams from destination
    certified = prom.query('lacewing_controller_connections_total{component="identity"}')
    assert certified and certified[0][1] >= 3, certified
    streams = prom.query('lacewing_controller_open_connections{component="destination"}')
    assert streams and streams[0][1] >= 1, streams


def test_prometheus_stops_with_the_cluster(traffic: dict[str, Any]) -> None:
    assert alive(traffic["pid"])
    assert lacewing("local", "down", "--name", NAME).returncode == 0
    assert not alive(traffic["pid"])
    assert leftovers(NAME) == []
