"""`lacewing proxy-init` against the real iptables, in network-namespace pods.

The proxy is replaced here by `origdst`, a listener that answers with the original destination
it reads through SO_ORIGINAL_DST: so each test shows where a plain `curl` really landed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.support.netns import Cluster, Pod
from tests.support.netns.bed import PYTHON

pytestmark = pytest.mark.root

PROXY_UID = "2102"


def curl_body(pod: Pod, url: str, *, as_uid: str | None = None) -> str:
    argv = ["curl", "-sS", "--max-time", "5", url]
    if as_uid is not None:  # curl is in /usr/bin, so it can run as the proxy's uid
        argv = ["setpriv", "--reuid", as_uid, "--regid", as_uid, "--clear-groups", *argv]
    result = pod.run(argv, timeout=10)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def landed_on_app(body: str) -> bool:
    return json.loads(body)["app"] == "lwt-http" if body.startswith("{") else False


@pytest.mark.parametrize("mode", ["nft", "legacy"])
def test_twice_leaves_one_set_and_clean_removes_it(netns_cluster: Cluster, mode: str) -> None:
    pod = netns_cluster.add_pod("init")
    binary = f"iptables-{mode}"
    first = pod.proxy_init("--iptables-mode", mode)
    second = pod.proxy_init("--iptables-mode", mode)
    assert b"installed the proxy's nat rules" in first.stdout
    assert b"already in place" in second.stdout

    saved = pod.run([binary, "-t", "nat", "-S"]).stdout.decode().splitlines()
    rules = [line for line in saved if line.startswith("-A ")]
    comments = [line.split('--comment "')[1].split('"')[0] for line in rules]
    assert sorted(comments) == sorted(
        [
            "proxy-init/install-proxy-init-prerouting",
            "proxy-init/install-proxy-init-output",
            "proxy-init/ignore-inbound-ports",
            "proxy-init/redirect-all-incoming-to-proxy-port",
            "proxy-init/ignore-proxy-user-id",
            "proxy-init/ignore-loopback",
            "proxy-init/redirect-all-outgoing-to-proxy-port",
        ]
    )
    # a later run without --iptables-mode finds the rules where they are
    assert b"already in place" in pod.proxy_init().stdout

    cleaned = pod.proxy_init("--clean", "--iptables-mode", mode)
    assert b"removed" in cleaned.stdout
    after = pod.run([binary, "-t", "nat", "-S"]).stdout.decode()
    assert "PROXY_INIT" not in after
    assert "-A " not in after


def test_outbound_goes_to_4140_except_proxy_uid_and_loopback(netns_cluster: Cluster) -> None:
    client, server = netns_cluster.add_pod("client"), netns_cluster.add_pod("server")
    server.start_app("http", 8080)
    client.start_app("origdst", 4140)
    client.start_app("http", 8081)
    client.proxy_init()

    assert curl_body(client, f"http://{server.ip}:8080/") == f"original-dst {server.ip}:8080\n"
    # the proxy's own connections (uid 2102) leave the pod untouched
    assert landed_on_app(curl_body(client, f"http://{server.ip}:8080/", as_uid=PROXY_UID))
    # traffic over lo (the inbound proxy talking to the app) is never redirected
    assert landed_on_app(curl_body(client, "http://127.0.0.1:8081/"))


def test_inbound_goes_to_4143_except_admin_and_ignored_ports(netns_cluster: Cluster) -> None:
    client, server = netns_cluster.add_pod("client"), netns_cluster.add_pod("server")
    server.start_app("origdst", 4143)
    for port in (8080, 4191, 9000):
        server.start_app("http", port)
    server.proxy_init("--inbound-ports-to-ignore", "9000")

    assert curl_body(client, f"http://{server.ip}:8080/") == f"original-dst {server.ip}:8080\n"
    assert landed_on_app(curl_body(client, f"http://{server.ip}:4191/"))
    assert landed_on_app(curl_body(client, f"http://{server.ip}:9000/"))


def test_ignored_outbound_ports_and_subnets_go_direct(netns_cluster: Cluster) -> None:
    client, server = netns_cluster.add_pod("client"), netns_cluster.add_pod("server")
    server.start_app("http", 8080)
    server.start_app("http", 9000)
    client.start_app("origdst", 4140)

    client.proxy_init("--outbound-ports-to-ignore", "9000")
    assert landed_on_app(curl_body(client, f"http://{server.ip}:9000/"))
    assert curl_body(client, f"http://{server.ip}:8080/").startswith("original-dst")

    client.proxy_init("--subnets-to-ignore", f"{server.ip}/32")
    assert landed_on_app(curl_body(client, f"http://{server.ip}:8080/"))
    jumps = [r for r in client.nat_rules() if "-j PROXY_INIT_" in r]
    assert len(jumps) == 2


def test_unknown_mode_and_bad_flags_are_one_line(netns_cluster: Cluster) -> None:
    pod = netns_cluster.add_pod("init")
    result = pod.lacewing("proxy-init", "--outbound-ports-to-ignore", "99999")
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        "Error: --outbound-ports-to-ignore: 99999 is not a TCP port",
        "ports are 1 to 65535",
    ]
    assert pod.nat_rules() == []


def test_without_net_admin_it_says_so_in_one_line(netns_cluster: Cluster) -> None:
    pod = netns_cluster.add_pod("init")
    argv = ["setpriv", "--bounding-set", "-net_admin", PYTHON, "-m", "lacewing.cli.main"]
    result = pod.run([*argv, "proxy-init"])
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert lines[0] == (
        "Error: proxy-init must run as root (or with CAP_NET_ADMIN) to change iptables rules"
    )
    assert len(lines) == 2 and "NET_ADMIN" in lines[1]
    assert pod.nat_rules() == []


def test_missing_binaries_fall_back_or_say_which_is_missing(
    netns_cluster: Cluster, tmp_path: Path
) -> None:
    pod = netns_cluster.add_pod("init")
    only_legacy = tmp_path / "bin"
    only_legacy.mkdir()
    (only_legacy / "iptables-legacy").symlink_to(shutil.which("iptables-legacy") or "")
    argv = ["env", f"PATH={only_legacy}", PYTHON, "-m", "lacewing.cli.main", "proxy-init"]

    asked_nft = pod.run([*argv, "--iptables-mode", "nft"])
    assert asked_nft.returncode == 1
    assert asked_nft.stderr.decode().splitlines()[0] == (
        "Error: --iptables-mode nft: iptables-nft is not on PATH"
    )
    assert pod.nat_rules() == []

    fell_back = pod.run(argv)
    assert fell_back.returncode == 0, fell_back.stderr
    assert fell_back.stderr.decode() == (
        "proxy-init: iptables-nft is not on PATH, falling back to iptables-legacy\n"
    )
    legacy = pod.run(["iptables-legacy", "-t", "nat", "-S"]).stdout.decode()
    assert legacy.count("-j PROXY_INIT_") == 2
