"""The local cluster runtime end to end (root): up, names, proxies, restarts, down, sweeping.

One cluster (`tloc` + a suffix of the run's PID) is shared by the module's tests, in file order:

    srv   x2  meshed, answers its pod name          Service srv.ttest (VIP)
    cli   x1  meshed, idle (a client to exec from)
    plain x1  unmeshed, in another namespace
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.local.conftest import REPO, alive, lacewing, leftovers, run_name

pytestmark = pytest.mark.root

NAME = run_name("tloc")
STATE = Path("/run/lacewing/local") / NAME
CLUSTER = f"""
workloads:
  - name: srv
    namespace: ttest
    replicas: 2
    ports: [{{name: http, port: 8080}}]
    command: [python, -m, tests.integration.local.whoami, "8080"]
    env: {{PYTHONPATH: "{REPO}"}}
  - name: cli
    namespace: ttest
    command: [sleep, infinity]
  - name: plain
    namespace: other
    meshed: false
    command: [sleep, infinity]
"""


def status() -> dict[str, dict[str, object]]:
    data = json.loads((STATE / "status.json").read_text())
    return {p["name"]: p for p in data["pods"]}


def curl(pod: str, url: str) -> str:
    result = lacewing("local", "exec", "--name", NAME, pod, "--", "curl", "-sS", "-m", "5", url)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    lacewing("local", "down", "--name", NAME)
    spec = tmp_path_factory.mktemp("local") / "cluster.yaml"
    spec.write_text(CLUSTER)
    up = lacewing("local", "up", "-f", str(spec), "--name", NAME)
    pids: list[int] = []
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert f"local cluster '{NAME}' is up: 7 pods ready" in up.stdout
        yield pids
    finally:
        down = lacewing("local", "down", "--name", NAME)
        assert down.returncode == 0, down.stderr


def test_status_lists_ready_pods(cluster: list[int]) -> None:
    result = lacewing("local", "status", "--name", NAME)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "MESHED", "RESTARTS", "IP"]
    assert [r[:4] for r in rows[1:]] == [
        ["lacewing", "lacewing-identity-0", "1/1", "no"],
        ["lacewing", "lacewing-destination-0", "1/1", "no"],
        ["lacewing", "lacewing-policy-0", "1/1", "no"],
        ["ttest", "srv-0", "1/1", "yes"],
        ["ttest", "srv-1", "1/1", "yes"],
        ["ttest", "cli-0", "1/1", "yes"],
        ["other", "plain-0", "1/1", "no"],
    ]
    for pod in status().values():
        cluster.extend(int(p) for p in pod["pids"].values())  # type: ignore[attr-defined]


def test_service_names_resolve_and_reach_replicas(cluster: list[int]) -> None:
    # meshed client -> its proxy -> (DNAT) -> srv's proxy -> srv
    assert curl("cli-0", "http://srv:8080/") in ("srv-0", "srv-1")
    assert curl("cli-0", "http://srv.ttest.svc.cluster.local:8080/") in ("srv-0", "srv-1")
    # unmeshed pod in another namespace: the short name is not its own, the others are
    assert curl("plain-0", "http://srv.ttest:8080/") in ("srv-0", "srv-1")
    short = lacewing("local", "exec", "--name", NAME, "plain-0", "--", "curl", "-sS", "-m",
                     "3", "http://srv:8080/")  # fmt: skip
    assert short.returncode != 0
    # every new connection is DNAT'ed at random: both replicas answer
    seen = {curl("plain-0", "http://srv.ttest:8080/") for _ in range(24)}
    assert seen == {"srv-0", "srv-1"}


def test_traffic_went_through_the_proxies(cluster: list[int]) -> None:
    curl("cli-0", "http://srv:8080/")
    out = curl("cli-0", "http://127.0.0.1:4191/metrics")
    outbound = [
        line for line in out.splitlines()
        if line.startswith("response_total{") and 'direction="outbound"' in line
        and 'authority="srv:8080"' in line
    ]  # fmt: skip
    assert outbound and float(outbound[0].split()[-1]) >= 1
    # srv's proxies served cli's requests over mutual TLS and know who asked
    client_id = 'client_id="cli.ttest.serviceaccount.identity.lacewing.cluster.local"'
    mtls = 0.0
    seen = []
    for pod in ("srv-0", "srv-1"):
        for line in curl(pod, "http://127.0.0.1:4191/metrics").splitlines():
            if line.startswith("response_total{") and 'direction="inbound"' in line:
                seen.append(line)
                if 'tls="true"' in line and client_id in line:
                    mtls += float(line.split()[-1])
    assert mtls >= 3, "\n".join(seen)


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="install Debian package prometheus")
def test_viz_stat_deploy(cluster: list[int]) -> None:
    """From the cluster's Prometheus (numbers checked in tests/integration/viz)."""
    loop = "for i in $(seq 60); do curl -s -m 2 -o /dev/null http://srv:8080/; sleep 0.05; done"
    traffic = subprocess.Popen(
        [sys.executable, "-m", "lacewing.cli.main", "local", "exec", "--name", NAME, "cli-0",
         "--", "sh", "-c", loop],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(4)  # the series exist and were scraped a few times (every 1s)
        result = lacewing("viz", "stat", "deploy", "-n", "ttest", "--local", NAME, "-t", "3s")
    finally:
        traffic.wait(timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[0].split()
    assert header == [
        "NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99",
        "TCP_CONN",
    ]  # fmt: skip
    rows = {line.split()[0]: dict(zip(header, line.split(), strict=True)) for line in lines[1:]}
    assert set(rows) == {"srv", "cli"}
    assert rows["srv"]["MESHED"] == "2/2"
    assert rows["srv"]["SUCCESS"] == "100.00%"
    assert float(rows["srv"]["RPS"].removesuffix("rps")) > 1
    assert rows["srv"]["LATENCY_P50"].endswith("ms")
    assert rows["cli"]["SUCCESS"] == "-"  # nobody calls cli


def test_logs(cluster: list[int]) -> None:
    app = lacewing("local", "logs", "--name", NAME, "srv-0")
    assert app.returncode == 0 and "whoami listening" in app.stdout
    proxy = lacewing("local", "logs", "--name", NAME, "srv-0", "--proxy")
    assert "running as uid 2102" in proxy.stdout
    plain = lacewing("local", "logs", "--name", NAME, "plain-0", "--proxy")
    assert plain.returncode == 2 and "is not meshed" in plain.stderr


def test_registry_file(cluster: list[int]) -> None:
    registry = json.loads((STATE / "registry.json").read_text())
    assert registry["cluster"] == NAME
    identity, destination, policy, service = registry["services"]
    assert identity["name"] == "lacewing-identity"
    assert destination["name"] == "lacewing-destination"
    assert policy["name"] == "lacewing-policy"
    assert service["name"] == "srv" and service["clusterIP"].startswith("10.43.0.")
    ready = {p["name"]: p["ready"] for p in registry["pods"]}
    assert ready == {
        "lacewing-identity-0": True, "lacewing-destination-0": True,
        "lacewing-policy-0": True, "srv-0": True, "srv-1": True, "cli-0": True, "plain-0": True,
    }  # fmt: skip


def wait_for(predicate: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_killed_app_is_restarted_and_leaves_the_service(cluster: list[int]) -> None:
    before = json.loads((STATE / "registry.json").read_text())["revision"]
    app_pid = int(status()["srv-1"]["pids"]["app"])  # type: ignore[index]
    os.kill(app_pid, signal.SIGKILL)
    # Once the supervisor has seen it (within a tick), the Service leaves it out until it is
    # ready again, so new connections (each curl is one, DNAT'ed afresh) all succeed.
    wait_for(lambda: not status()["srv-1"]["ready"], timeout=5)
    answers = []
    while not status()["srv-1"]["ready"]:
        answers.append(curl("plain-0", "http://srv.ttest:8080/"))
    # (the rules are rewritten just before status.json, so the last curl may see srv-1 back)
    assert answers and set(answers[:-1]) <= {"srv-0"} and answers[-1] in ("srv-0", "srv-1")
    log = (STATE / "supervisor.log").read_text()
    assert "srv-1/app exited (-9); restarting in 0.5s" in log
    # ready at start-up, then not ready (killed), then ready again (restarted)
    ready_at_start = log.index("srv-1=True")
    down = log.index("srv-1=False", ready_at_start)
    assert log.index("srv-1=True", down) > down
    assert status()["srv-1"]["restarts"] == 1
    assert int(status()["srv-1"]["pids"]["app"]) != app_pid  # type: ignore[index]
    cluster.extend(int(p) for p in status()["srv-1"]["pids"].values())  # type: ignore[attr-defined]
    registry = json.loads((STATE / "registry.json").read_text())
    assert registry["revision"] >= before + 2


def test_crashed_supervisor_is_swept_and_clusters_coexist(
    tmp_path: Path, cleanup: list[str]
) -> None:
    other = "tcrash"
    cleanup.append(other)
    spec = tmp_path / "c.yaml"
    spec.write_text("workloads: [{name: idle, meshed: false, command: [sleep, infinity]}]\n")
    assert lacewing("local", "up", "-f", str(spec), "--name", other).returncode == 0
    # two clusters side by side
    assert lacewing("local", "status", "--name", NAME).returncode == 0
    assert lacewing("local", "status", "--name", other).returncode == 0
    supervisor = int(Path(f"/run/lacewing/local/{other}/supervisor.pid").read_text())
    app = json.loads(Path(f"/run/lacewing/local/{other}/status.json").read_text())["pods"][0]
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not alive(supervisor), timeout=5)
    assert leftovers(other)  # the crash left its namespaces behind ...
    again = lacewing("local", "up", "-f", str(spec), "--name", other)
    assert again.returncode == 0, again.stderr  # ... which the next `up` swept
    assert not alive(int(app["pids"]["app"]))
    supervisor = int(Path(f"/run/lacewing/local/{other}/supervisor.pid").read_text())
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not alive(supervisor), timeout=5)
    down = lacewing("local", "down", "--name", other)
    assert down.stdout.strip() == f"local cluster '{other}' was not running; removed its leftovers"
    assert leftovers(other) == []
    assert lacewing("local", "status", "--name", NAME).returncode == 0  # the other one lives


def test_down_leaves_nothing(cluster: list[int]) -> None:
    down = lacewing("local", "down", "--name", NAME)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == f"local cluster '{NAME}' stopped and removed"
    assert leftovers(NAME) == []
    assert [pid for pid in cluster if alive(pid)] == []
    assert lacewing("local", "down", "--name", NAME).stdout.strip() == (
        f"no local cluster named '{NAME}'"
    )


def test_pod_that_never_gets_ready_is_one_clear_line(tmp_path: Path, cleanup: list[str]) -> None:
    name = run_name("tbad")
    cleanup.append(name)
    spec = tmp_path / "c.yaml"
    spec.write_text(
        "workloads: [{name: broken, meshed: false, ports: [{port: 9000}], command: ['false']}]\n"
    )
    up = lacewing("local", "up", "-f", str(spec), "--name", name, "--timeout", "4")
    assert up.returncode == 1
    errors = [line for line in up.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: pods not ready after 4s: broken-0"]
    status = lacewing("local", "status", "--name", name)
    assert "broken-0" in status.stdout and "0/1" in status.stdout
    assert lacewing("local", "down", "--name", name).returncode == 0
    assert leftovers(name) == []
