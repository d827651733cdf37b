"""The mesh end to end on a real local cluster (root): mTLS by Service name, per-request
balancing, scaling and killed pods, a stopped control plane, and a clean `down`.

One cluster (`tlmesh` + a suffix of the run's PID) is shared by the module's tests, in file order:

    srv  x2  meshed, answers its pod name after 10 ms            Service srv.tmesh
    lag  x2  meshed, answers its pod name; lag-1 takes 40 ms     Service lag.tmesh
    cli  x1  meshed, idle: the client pod every request starts from

Traffic comes from `keepalive_client` run inside cli-0 (each thread one keep-alive
connection, every request timestamped with the pod that answered); what the proxies saw is
read from their own /metrics, as a user would with `curl localhost:4191/metrics`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.local.conftest import REPO, lacewing, leftovers, run_name

pytestmark = pytest.mark.root

NAME = run_name("tlmesh")
STATE = Path("/run/lacewing/local") / NAME
CLIENT_ID = "cli.tmesh.serviceaccount.identity.lacewing.cluster.local"
SRV_ID = "srv.tmesh.serviceaccount.identity.lacewing.cluster.local"
APP = ["python", "-m", "tests.integration.local.slow_whoami", "8080"]
CLUSTER = f"""
workloads:
  - name: srv
    namespace: tmesh
    replicas: 2
    ports: [{{name: http, port: 8080}}]
    command: {json.dumps(APP)}
    env: {{PYTHONPATH: "{REPO}", SLOW_REPLICA: all, SLOW_MS: "10"}}
  - name: lag
    namespace: tmesh
    replicas: 2
    ports: [{{name: http, port: 8080}}]
    command: {json.dumps(APP)}
    env: {{PYTHONPATH: "{REPO}", SLOW_REPLICA: "1", SLOW_MS: "40"}}
  - name: cli
    namespace: tmesh
    command: [sleep, infinity]
"""

Record = dict[str, Any]


# ---- helpers ----------------------------------------------------------------------------


def status() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((STATE / "status.json").read_text())
    return data


def pods() -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in status()["pods"]}


def exec_in(pod: str, *argv: str, timeout: float = 60) -> str:
    result = lacewing("local", "exec", "--name", NAME, pod, "--", *argv, timeout=timeout)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def client_argv(url: str, amount: str, concurrency: int) -> list[str]:
    return [sys.executable, "-m", "tests.integration.local.keepalive_client", url, amount,
            str(concurrency)]  # fmt: skip


def parse_records(out: str) -> tuple[list[Record], Record]:
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert records and records[-1].get("done"), out[-500:]
    return records[:-1], records[-1]


def run_client(url: str, amount: str, concurrency: int = 1) -> tuple[list[Record], Record]:
    return parse_records(exec_in("cli-0", *client_argv(url, amount, concurrency)))


class Background:
    """keepalive_client running in cli-0 while the test changes the cluster."""

    def __init__(self, url: str, seconds: float, concurrency: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lacewing.cli.main", "local", "exec", "--name", NAME, "cli-0",
             "--", *client_argv(url, f"{seconds}s", concurrency)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip

    def result(self, timeout: float = 30) -> tuple[list[Record], Record]:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return parse_records(out)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metrics(pod: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Samples of metric `name` from the pod's proxy: (labels, value)."""
    found = []
    for line in exec_in(
        pod, "curl", "-sS", "-m", "5", "http://127.0.0.1:4191/metrics"
    ).splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            found.append((dict(_LABEL.findall(match.group(2))), float(match.group(3))))
    return found


def inbound_from_cli(pod: str) -> float:
    """Requests the pod's inbound proxy served to cli over mutual TLS."""
    return sum(
        value
        for labels, value in metrics(pod, "request_total")
        if labels.get("direction") == "inbound"
        and labels.get("tls") == "true"
        and labels.get("client_id") == CLIENT_ID
    )


def answered_by(
    records: list[Record], since: float = 0, until: float = float("inf")
) -> Counter[str]:
    return Counter(r["pod"] for r in records if "pod" in r and since <= r["t"] < until)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until `predicate()`; the time it became true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g}s"
        time.sleep(0.05)
    return time.time()


def restarted(pod: str, old_pid: int) -> Callable[[], bool]:
    return lambda: pods()[pod]["pids"]["app"] not in (None, old_pid)


def scale(replicas: int) -> float:
    result = lacewing("local", "scale", "srv", "--replicas", str(replicas), "--name", NAME)
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"srv scaled to {replicas} in local cluster '{NAME}'" in result.stdout
    return time.time()


def iptables(pod: str, action: str, port: int) -> None:
    """Insert (-I) or delete (-D) a rule in the pod's namespace that refuses connections from
    other pods to `port` (the supervisor's readiness probe, on 127.0.0.1, still gets in)."""
    netns = f"lwl-{NAME}-{pod}"
    subprocess.run(
        ["ip", "netns", "exec", netns, "iptables", "-w", "5", action, "INPUT", "-i", "lweth0",
         "-p", "tcp", "--dport", str(port), "-j", "REJECT", "--reject-with", "tcp-reset"],
        check=True,
    )  # fmt: skip


def host_view() -> dict[str, set[str]]:
    """What a cluster could leave in the host namespace: links, nat/filter rules, processes."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    procs = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            ours = f"lwl-{NAME}-" in cmdline or f"--name {NAME} " in cmdline + " "
            if ours and "pytest" not in cmdline:
                procs.add(f"{entry.name}: {cmdline}")
    return {
        "links": {line.split(":")[1].strip() for line in links.splitlines() if "lw" in line},
        "rules": {line for line in rules.splitlines() if NAME in line or "lw-" in line},
        "processes": procs,
    }


# ---- the cluster ------------------------------------------------------------------------


def process(pid: int) -> tuple[int, str, str] | None:
    """(pid, start time, command line) of a live process; None if gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    return None if stat[0] == "Z" else (pid, stat[19], cmdline.strip())


class Seen:
    """Every process the cluster had (a PID with its start time: PIDs get reused), and the
    host before the cluster existed."""

    def __init__(self) -> None:
        self.processes: set[tuple[int, str, str]] = set()
        self.before: dict[str, set[str]] = {}

    def record(self) -> None:
        data = status()
        pids = [int(data["supervisor"])]
        for pod in data["pods"]:
            pids += [int(p) for p in pod["pids"].values() if p]
        self.processes.update(p for p in map(process, pids) if p is not None)

    def still_running(self) -> list[tuple[int, str, str]]:
        return sorted(p for p in self.processes if process(p[0]) == p)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seen]:
    lacewing("local", "down", "--name", NAME)
    seen = Seen()
    seen.before = host_view()
    spec = tmp_path_factory.mktemp("mesh") / "cluster.yaml"
    spec.write_text(CLUSTER)
    try:
        up = lacewing("local", "up", "-f", str(spec), "--name", NAME)
        assert up.returncode == 0, up.stderr + up.stdout
        assert f"local cluster '{NAME}' is up: 8 pods ready" in up.stdout
        seen.record()
        yield seen
    finally:
        lacewing("local", "down", "--name", NAME)


# ---- 1. by Service name, over mutual TLS -------------------------------------------------


def test_pods_reach_each_other_by_service_name_over_mtls(cluster: Seen) -> None:
    before = {pod: inbound_from_cli(pod) for pod in ("srv-0", "srv-1")}
    for url in ("http://srv:8080/", "http://srv.tmesh:8080/",
                "http://srv.tmesh.svc.cluster.local:8080/"):  # fmt: skip
        for _ in range(3):
            assert exec_in("cli-0", "curl", "-sS", "-m", "5", url) in ("srv-0", "srv-1")
    # srv's inbound proxies served those 9 requests over mTLS and know cli's identity
    after = {pod: inbound_from_cli(pod) for pod in ("srv-0", "srv-1")}
    assert sum(after.values()) - sum(before.values()) == 9
    # cli's outbound proxy verified srv's identity and labels the endpoint it chose
    outbound = [
        labels
        for labels, value in metrics("cli-0", "response_total")
        if labels.get("direction") == "outbound" and labels.get("dst_service") == "srv"
        and value > 0
    ]  # fmt: skip
    assert outbound, "cli's proxy has no outbound srv responses labelled by discovery"
    for labels in outbound:
        assert labels["tls"] == "true"
        assert labels["server_id"] == SRV_ID
        assert labels["dst_namespace"] == "tmesh"
        assert labels["dst_deployment"] == "srv"
        assert labels["dst_pod"] in ("srv-0", "srv-1")
        assert labels["classification"] == "success"
    # the labels came from destination's stream, which serves mutual TLS only: the proxies
    # reached it with their own certificates, and a plaintext client is turned away
    log = lacewing("local", "logs", "--name", NAME, "lacewing-destination-0").stdout
    assert "listening on https (mTLS)" in log
    plain = lacewing("local", "exec", "--name", NAME, "lacewing-identity-0", "--", "curl", "-sS",
                     "-m", "3", "http://lacewing-destination.lacewing:8086/v1/endpoints"
                     "?authority=srv.tmesh.svc.cluster.local:8080")  # fmt: skip
    assert plain.returncode != 0 and '"type"' not in plain.stdout, plain.stdout
    assert "resolve" not in plain.stderr, plain.stderr  # reached it, and was refused


# ---- 2. requests, not connections, are balanced -----------------------------------------


def test_one_keepalive_connection_is_spread_over_both_replicas(cluster: Seen) -> None:
    before = {pod: inbound_from_cli(pod) for pod in ("srv-0", "srv-1")}
    records, done = run_client("http://srv:8080/", "100")
    assert done["connects"] == 1  # one connection from the app ...
    assert [r for r in records if "error" in r] == []
    answers = answered_by(records)
    after = {pod: inbound_from_cli(pod) for pod in ("srv-0", "srv-1")}
    served = {pod: after[pod] - before[pod] for pod in before}
    # ... and both replicas' inbound proxies counted a fair part of its 100 requests
    assert served == {"srv-0": answers["srv-0"], "srv-1": answers["srv-1"]}
    assert sum(served.values()) == 100
    assert min(served.values()) >= 15, served


def test_a_slow_replica_gets_a_small_share(cluster: Seen) -> None:
    records, done = run_client("http://lag:8080/", "150", concurrency=2)
    assert done["connects"] == 2
    assert [r for r in records if "error" in r] == []
    answers = answered_by(records)
    assert sum(answers.values()) == 300
    # lag-1 answers after 40 ms, lag-0 at once: peak-EWMA sends lag-1 little
    assert answers["lag-1"] <= 0.15 * 300, answers
    assert answers["lag-0"] >= 0.85 * 300, answers


# ---- 3. scaling and killed pods move traffic within a second ------------------------------


def test_scaling_moves_traffic_within_a_second(cluster: Seen) -> None:
    # 10 s of load: scaling up and down takes 4-5 s on a quiet machine, up to ~7 s on a busy one
    load = Background("http://srv:8080/", seconds=10, concurrency=4)
    try:
        time.sleep(1.5)
        asked_up = time.time()
        up_done = scale(3)  # returns when srv-2 is ready
        cluster.record()
        time.sleep(1.5)
        asked_down = time.time()
        down_done = scale(2)
        records, _ = load.result()
    finally:
        load.kill()
    # no request failed, through scale-up and scale-down
    assert [r for r in records if "error" in r] == []
    assert set(answered_by(records, until=asked_up)) == {"srv-0", "srv-1"}
    # srv-2 got traffic within a second of being ready, and a fair share afterwards
    first_srv2 = min(r["t"] for r in records if r.get("pod") == "srv-2")
    assert first_srv2 - up_done < 1.0
    share = answered_by(records, since=up_done + 1.0, until=asked_down)
    assert share["srv-2"] >= 0.1 * sum(share.values()), share
    # scaled away: no request reached srv-2 later than a second after `scale` returned
    assert records[-1]["t"] > down_done + 1.5, "the load ended before the scale-down settled"
    assert answered_by(records, since=down_done + 1.0)["srv-2"] == 0
    assert set(answered_by(records, since=down_done + 1.0)) == {"srv-0", "srv-1"}
    assert [p for p in pods() if p.startswith("srv-")] == ["srv-0", "srv-1"]


def test_a_killed_pod_loses_its_traffic_and_only_in_flight_requests_fail(cluster: Seen) -> None:
    concurrency = 4
    load = Background("http://srv:8080/", seconds=6, concurrency=concurrency)
    try:
        time.sleep(1.5)
        victim = pods()["srv-1"]["pids"]
        killed = time.time()
        for pid in victim.values():
            os.killpg(int(pid), signal.SIGKILL)  # the proxy and the app: the whole pod
        wait_for(lambda: not pods()["srv-1"]["ready"], 3, "srv-1 seen as not ready")
        back = wait_for(lambda: pods()["srv-1"]["ready"], 10, "srv-1 restarted and ready")
        records, _ = load.result()
    finally:
        load.kill()
    cluster.record()
    failed = [r for r in records if "error" in r]
    # at most the request each connection had in flight to srv-1, all of them right at the kill
    assert len(failed) <= concurrency, failed
    assert all(r["t"] < killed + 0.5 for r in failed), failed
    # traffic never stopped: srv-0 answered in every quarter second from the kill on, and
    # took over at once (a fair share of all answers in the first second, with srv-1 dead)
    for slot in range(int((records[-1]["t"] - killed) / 0.25)):
        since = killed + 0.25 * slot
        assert answered_by(records, since, since + 0.25)["srv-0"] > 0, f"stalled at {since}"
    first_second = answered_by(records, since=killed, until=killed + 1.0)
    assert first_second["srv-0"] >= 0.8 * sum(first_second.values()), first_second
    # once restarted and ready, srv-1 is back in rotation
    assert answered_by(records, since=back + 1.0)["srv-1"] > 0


# ---- 4. the control plane stops; traffic does not --------------------------------------


def test_traffic_flows_without_the_control_plane_and_updates_resume(cluster: Seen) -> None:
    control = ("lacewing-identity-0", 8080), ("lacewing-destination-0", 8086)
    blocked = list(control)
    try:
        # Kill identity and destination; the supervisor restarts them, so also refuse every
        # connection from the pods to them: for the proxies the control plane is gone.
        killed = {}
        for pod, port in control:
            iptables(pod, "-I", port)
            killed[pod] = pods()[pod]["pids"]["app"]
            os.killpg(int(killed[pod]), signal.SIGKILL)
        for pod in killed:  # restarted by the supervisor, and still out of the proxies' reach
            wait_for(restarted(pod, killed[pod]), 5, f"{pod} restarted")
        cluster.record()
        records, _ = run_client("http://srv:8080/", "3s", concurrency=2)
        assert [r for r in records if "error" in r] == []
        assert set(answered_by(records)) == {"srv-0", "srv-1"}  # last known endpoints
        # identity back (a new pod needs a certificate), destination still unreachable:
        pod, port = blocked.pop(0)
        iptables(pod, "-D", port)
        scale(3)
        cluster.record()
        records, _ = run_client("http://srv:8080/", "1.5s", concurrency=4)
        assert [r for r in records if "error" in r] == []
        assert answered_by(records)["srv-2"] == 0  # nobody told the proxies about srv-2
        # destination reachable again: the proxies reconnect (backoff up to 5 s) and update
        reopened = time.time()
        pod, port = blocked.pop(0)
        iptables(pod, "-D", port)
        records, _ = run_client("http://srv:8080/", "8s", concurrency=4)
        assert [r for r in records if "error" in r] == []
        first = min((r["t"] for r in records if r.get("pod") == "srv-2"), default=None)
        assert first is not None, "srv-2 never got traffic after destination came back"
        assert first - reopened < 7.0
    finally:
        for pod, port in blocked:
            iptables(pod, "-D", port)
    cluster.record()


# ---- 5. down leaves nothing --------------------------------------------------------------


def test_down_leaves_nothing(cluster: Seen) -> None:
    cluster.record()
    assert len(cluster.processes) > 15  # supervisor, 3 control plane, 5 pods x 2, restarts
    down = lacewing("local", "down", "--name", NAME)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == f"local cluster '{NAME}' stopped and removed"
    assert leftovers(NAME) == []  # namespaces, /etc/netns entries, state directory
    assert cluster.still_running() == []
    after = host_view()
    assert after["processes"] == set()
    assert after["links"] - cluster.before["links"] == set()
    assert after["rules"] - cluster.before["rules"] == set()
