"""The test bed itself: pods talk to each other, nothing leaves the node, nothing is left over."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests.support.netns import Cluster, http_get, sweep
from tests.support.netns.bed import OWNERS

pytestmark = pytest.mark.root


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_pods_reach_each_other_and_nothing_else(netns_cluster: Cluster) -> None:
    client, server = netns_cluster.add_pod("client"), netns_cluster.add_pod("server")
    server.start_app("http", 8080)
    status, body = http_get(client, server.ip, 8080, "/")
    assert status == 200 and b"lwt-http" in body

    for pod in (client, server):
        routes = pod.run(["ip", "-4", "route"]).stdout.decode().splitlines()
        assert routes == [
            f"{netns_cluster.subnet}.0/24 dev lwteth0 proto kernel scope link src {pod.ip} "
        ]
    node_links = netns_cluster_links(netns_cluster.node)
    assert node_links == {"lo", "lwtbr0", "lwtv0", "lwtv1"}
    assert netns_cluster.pods["client"].run(["ip", "-4", "route"]).stdout.count(b"default") == 0
    unreachable = client.curl("http://192.0.2.1/", timeout=2)
    assert unreachable.returncode != 0
    assert b"connect" in unreachable.stderr.lower() or b"unreachable" in unreachable.stderr


def netns_cluster_links(netns: str) -> set[str]:
    out = subprocess.run(["ip", "-n", netns, "-o", "link"], capture_output=True, text=True)
    return {line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()}


def test_close_kills_processes_and_deletes_namespaces(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    cluster.start()
    pod = cluster.add_pod("app")
    proc = pod.spawn("sleeper", ["sleep", "60"])
    names = {pod.netns, cluster.node}
    assert names <= netns_names()
    cluster.close()
    assert proc.popen.poll() is not None
    assert not os.path.exists(f"/proc/{proc.pid}")
    assert not names & netns_names()
    assert not (OWNERS / cluster.id).exists()
    cluster.close()  # twice is fine


def test_sweep_removes_leftovers_of_a_dead_run_but_not_live_ones(
    netns_cluster: Cluster, tmp_path: Path
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = "lwt-dead00-pod"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    OWNERS.mkdir(parents=True, exist_ok=True)
    (OWNERS / "dead00").write_text(str(dead.pid))
    straggler = subprocess.Popen(["ip", "netns", "exec", stale, "sleep", "60"])
    try:
        removed = sweep()
        assert stale in removed
        assert stale not in netns_names()
        assert straggler.wait(timeout=5) != 0  # killed
        assert netns_cluster.node in netns_names()  # this run's cluster stays
    finally:
        straggler.kill()
        straggler.wait()
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)
