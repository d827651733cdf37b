"""Layout of a local cluster: addresses, names, hosts files and the Service DNAT rules."""

from __future__ import annotations

import pytest

from lacewing.errors import UsageError
from lacewing.local.plan import (
    check_cluster_name,
    hosts_file,
    plan_cluster,
    resolv_conf,
    services_restore,
)
from lacewing.local.spec import parse_cluster

SPEC = parse_cluster(
    {
        "workloads": [
            {"name": "web", "namespace": "shop", "ports": [{"name": "http", "port": 8080}],
             "command": ["web"]},
            {"name": "api", "namespace": "shop", "replicas": 3,
             "ports": [{"name": "http", "port": 80}, {"name": "db", "port": 5432, "opaque": True}],
             "command": ["api"]},
            {"name": "bot", "namespace": "tools", "meshed": False, "command": ["bot"]},
        ]
    }
)  # fmt: skip


def test_addresses_and_names_are_stable() -> None:
    plan = plan_cluster("t1", SPEC)
    assert [(p.name, p.ip, p.netns, p.veth) for p in plan.pods] == [
        ("web-0", "10.42.0.10", "lwl-t1-web-0", "lwv0"),
        ("api-0", "10.42.0.11", "lwl-t1-api-0", "lwv1"),
        ("api-1", "10.42.0.12", "lwl-t1-api-1", "lwv2"),
        ("api-2", "10.42.0.13", "lwl-t1-api-2", "lwv3"),
        ("bot-0", "10.42.0.14", "lwl-t1-bot-0", "lwv4"),
    ]
    assert plan.node_netns == "lwl-t1-node"
    # Only workloads with ports get a Service; VIPs come from their own range.
    assert [(s.name, s.cluster_ip) for s in plan.services] == [
        ("web", "10.43.0.10"),
        ("api", "10.43.0.11"),
    ]
    api = plan.services[1]
    assert [(p.name, p.port, p.target_port, p.opaque) for p in api.ports] == [
        ("http", 80, 80, False),
        ("db", 5432, 5432, True),
    ]
    assert plan.pod("api-2").replica == 2


def test_pod_env_is_like_the_downward_api() -> None:
    pod = plan_cluster("t1", SPEC).pod("api-1")
    env = pod.env("t1")
    assert env["POD_NAME"] == "api-1"
    assert env["POD_NAMESPACE"] == "shop"
    assert env["POD_IP"] == "10.42.0.12"
    assert env["POD_REPLICA"] == "1"


@pytest.mark.parametrize("name", ["", "Local", "1abc", "a-b", "abcdefghijklm"])
def test_bad_cluster_names(name: str) -> None:
    with pytest.raises(UsageError, match="invalid cluster name"):
        check_cluster_name(name)


def test_unknown_pod_lists_known_ones() -> None:
    with pytest.raises(UsageError) as caught:
        plan_cluster("t1", SPEC).pod("nope")
    assert caught.value.hint == "pods: web-0, api-0, api-1, api-2, bot-0"


def test_hosts_file_resolves_service_names() -> None:
    plan = plan_cluster("t1", SPEC)
    text = hosts_file(plan.pod("web-0"), plan.services)
    lines = text.splitlines()
    assert "10.42.0.10\tweb-0" in lines
    assert "10.43.0.11\tapi api.shop api.shop.svc api.shop.svc.cluster.local" in lines
    # From another namespace the short name is not offered (it would be another namespace's).
    other = hosts_file(plan.pod("bot-0"), plan.services)
    assert "10.43.0.11\tapi.shop api.shop.svc api.shop.svc.cluster.local" in other.splitlines()


def test_resolv_conf_search_path() -> None:
    pod = plan_cluster("t1", SPEC).pod("bot-0")
    assert "search tools.svc.cluster.local svc.cluster.local cluster.local" in resolv_conf(pod)


def test_dnat_rules_spread_over_ready_endpoints_only() -> None:
    plan = plan_cluster("t1", SPEC)
    ready = {"web-0": True, "api-0": True, "api-1": False, "api-2": True}
    text = services_restore("t1", plan.registry(4, ready))
    lines = text.splitlines()
    assert lines[0] == "*nat"
    assert lines[1] == ":lw-t1-svc - [0:0]"
    assert lines[-1] == "COMMIT"
    api_http = [line for line in lines if '"shop/api:http"' in line]
    assert api_http == [
        "-A lw-t1-svc -d 10.43.0.11/32 -p tcp -m tcp --dport 80 -m comment --comment "
        '"shop/api:http" -m statistic --mode random --probability 0.50000000000 '
        "-j DNAT --to-destination 10.42.0.11:80",
        "-A lw-t1-svc -d 10.43.0.11/32 -p tcp -m tcp --dport 80 -m comment --comment "
        '"shop/api:http" -j DNAT --to-destination 10.42.0.13:80',
    ]
    assert sum('"shop/api:db"' in line for line in lines) == 2
    web = [line for line in lines if '"shop/web:http"' in line]
    assert web == [
        "-A lw-t1-svc -d 10.43.0.10/32 -p tcp -m tcp --dport 8080 -m comment --comment "
        '"shop/web:http" -j DNAT --to-destination 10.42.0.10:8080'
    ]


def test_three_endpoints_get_a_third_each() -> None:
    plan = plan_cluster("t1", SPEC)
    registry = plan.registry(1, {p.name: True for p in plan.pods})
    lines = [x for x in services_restore("t1", registry).splitlines() if '"shop/api:http"' in x]
    probabilities = [x.split("--probability ")[1].split()[0] for x in lines[:-1]]
    assert probabilities == ["0.33333333333", "0.50000000000"]
    assert "statistic" not in lines[-1]


def test_no_ready_endpoint_no_rule() -> None:
    plan = plan_cluster("t1", SPEC)
    text = services_restore("t1", plan.registry(1, {}))
    assert text == "*nat\n:lw-t1-svc - [0:0]\nCOMMIT\n"
