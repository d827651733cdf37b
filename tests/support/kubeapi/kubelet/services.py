"""Services as kube-proxy makes them, and cluster DNS as hosts files (pure).

`nat_restore(services, slices, extra)` renders, for `iptables-restore --noflush`, the nat
chain `LWK-SERVICES`: for every port of every Service with a ClusterIP, DNAT rules to the
ready endpoints of its EndpointSlices (matched by port name), chosen at random with
probabilities 1/n, 1/(n-1), ... so each of n endpoints gets 1/n of new connections, as
kube-proxy's iptables mode does. A Service port without ready endpoints gets a REJECT
rule in the filter chain `LWK-SERVICES-REJECT` instead, as kube-proxy's KUBE-SERVICES filter
rules do, so a connection to it is refused at once; otherwise its unanswered SYN would leave
a conntrack entry without NAT that its retransmissions keep using even after endpoints
appear, and the client would wait for its own timeout. `extra` adds fixed (ClusterIP,
port, destination) rules: the `kubernetes` Service pointing at the API relay.
The chains are jumped to from OUTPUT in every pod (after proxy-init's jump, so a meshed
app's connection is first redirected to its proxy, whose own connections, RETURNed by
proxy-init, are then DNATed) and in the node's namespace.

`hosts_text(pod, services)` is the pod's /etc/hosts: its own name, and per Service
`svc.ns`, `svc.ns.svc` and `svc.ns.svc.cluster.local`, with the short `svc` for Services
of the pod's own namespace: the names cluster DNS answers, for glibc's `files` lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["CHAIN", "CLUSTER_DOMAIN", "REJECT_CHAIN", "hosts_text", "nat_restore", "resolv_text"]

CHAIN = "LWK-SERVICES"
REJECT_CHAIN = "LWK-SERVICES-REJECT"
CLUSTER_DOMAIN = "cluster.local"


def _ready_endpoints(slices: Iterable[Mapping[str, Any]], port_name: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for sl in slices:
        port = next((p for p in sl.get("ports") or [] if (p.get("name") or "") == port_name), None)
        if port is None or port.get("port") is None:
            continue
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            out += [(addr, int(port["port"])) for addr in ep.get("addresses") or []]
    return sorted(set(out))


def _dnat(match: str, targets: Sequence[tuple[str, int]]) -> list[str]:
    rules = []
    for k, (ip, port) in enumerate(targets):
        chance = ""
        if k < len(targets) - 1:
            chance = f" -m statistic --mode random --probability {1 / (len(targets) - k):.11f}"
        rules.append(f"-A {CHAIN} {match}{chance} -j DNAT --to-destination {ip}:{port}")
    return rules


def nat_restore(
    services: Iterable[Mapping[str, Any]],
    slices: Iterable[Mapping[str, Any]],
    extra: Iterable[tuple[str, int, str]] = (),
) -> str:
    by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        owner = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if owner:
            by_service.setdefault((meta.get("namespace", ""), owner), []).append(sl)
    lines = ["*nat", f":{CHAIN} - [0:0]"]
    rejects: list[str] = []
    for ip, port, dest in extra:
        lines.append(
            f"-A {CHAIN} -d {ip}/32 -p tcp -m tcp --dport {port} -j DNAT --to-destination {dest}"
        )
    for svc in sorted(services, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])):
        meta, spec = svc["metadata"], svc.get("spec") or {}
        cluster_ip = spec.get("clusterIP")
        if not cluster_ip or cluster_ip == "None" or not spec.get("selector"):
            continue
        mine = by_service.get((meta["namespace"], meta["name"]), [])
        for port in spec.get("ports") or []:
            if (port.get("protocol") or "TCP") != "TCP":
                continue
            comment = f"{meta['namespace']}/{meta['name']}:{port.get('name') or port['port']}"
            match = (
                f"-d {cluster_ip}/32 -p tcp -m tcp --dport {port['port']}"
                f' -m comment --comment "{comment}"'
            )
            targets = _ready_endpoints(mine, port.get("name") or "")
            if targets:
                lines += _dnat(match, targets)
            else:
                reject = "-j REJECT --reject-with icmp-port-unreachable"
                rejects.append(f"-A {REJECT_CHAIN} {match} {reject}")
    lines += ["COMMIT", "*filter", f":{REJECT_CHAIN} - [0:0]", *rejects, "COMMIT"]
    return "\n".join(lines) + "\n"


def hosts_text(
    pod_name: str, pod_ip: str, namespace: str, services: Iterable[Mapping[str, Any]]
) -> str:
    lines = [
        "# written by the test-bed kubelet: cluster DNS names of Services",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{pod_ip}\t{pod_name}",
    ]
    for svc in sorted(services, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])):
        meta, spec = svc["metadata"], svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        name, ns = meta["name"], meta["namespace"]
        names = [f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.{CLUSTER_DOMAIN}"]
        if ns == namespace:
            names.insert(0, name)
        lines.append(f"{ip}\t" + " ".join(names))
    return "\n".join(lines) + "\n"


def resolv_text(namespace: str) -> str:
    return (
        "# written by the test-bed kubelet: Service names are in /etc/hosts\n"
        f"search {namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\n"
        "options ndots:5 timeout:1 attempts:1\n"
    )
