"""The node's network: a node namespace with a bridge, and a namespace per pod on it.

Reuses the local runtime's machinery (`lacewing.local.netns`: `ip`, `iptables-restore`,
setns threads). Layout, for a kubelet whose names start with `lwk-<id>-`:

    lwk-<id>-node    bridge lwbr0 = <podCIDR>.1/24 (the API relay listens there), no link
                     to the host and no default route (only 10.96.0.0/12, the ClusterIPs, on
                     the bridge), so no packet leaves the machine
    lwk-<id>-<n>     eth0 = the pod's IP/24, default route via the bridge address; its
                     veth peer lwkv<n> sits in the node namespace, on the bridge

Each pod has /etc/netns/<netns>/hosts and resolv.conf, which `ip netns exec` binds over
/etc/hosts and /etc/resolv.conf of each container. The hosts file is rewritten in place
(same inode), because a bind mount of a file keeps pointing at the inode it was made with:
a Service created after a pod started is then resolvable in it at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os

from lacewing.local import netns as lnetns
from lacewing.local.netns import ETC_NETNS, sh
from lacewing.local.plan import BRIDGE
from tests.support.kubeapi.kubelet.services import CHAIN, REJECT_CHAIN

__all__ = ["BRIDGE", "SERVICE_CIDR", "Network"]

SERVICE_CIDR = "10.96.0.0/12"  # where the test bed's Services get their ClusterIPs


def _write_in_place(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        data = text.encode()
        os.ftruncate(fd, len(data))
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


class Network:
    def __init__(self, prefix: str, pod_cidr: str) -> None:
        self.prefix = prefix
        self.node = f"{prefix}node"
        net = ipaddress.ip_network(pod_cidr)
        self.gateway = str(next(net.hosts()))
        self.prefixlen = net.prefixlen

    def netns_of(self, index: int) -> str:
        return f"{self.prefix}{index}"

    def up(self) -> None:
        lnetns.add_node(self.node)  # lo up, bridge lwbr0 up
        sh("ip", "-n", self.node, "addr", "add", f"{self.gateway}/{self.prefixlen}", "dev", BRIDGE)
        # connect() to a ClusterIP needs a route before nat OUTPUT rewrites it to a pod address
        sh("ip", "-n", self.node, "route", "add", SERVICE_CIDR, "dev", BRIDGE)
        self.ensure_jump(self.node)

    def add_pod(self, index: int, ip: str, hosts: str, resolv: str) -> str:
        name = self.netns_of(index)
        veth = f"lwkv{index}"
        self.remove_pod(index)
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh(
            "ip",
            "-n",
            self.node,
            "link",
            "add",
            veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            name,
        )
        sh("ip", "-n", self.node, "link", "set", veth, "master", BRIDGE, "up")
        sh("ip", "-n", name, "addr", "add", f"{ip}/{self.prefixlen}", "dev", "eth0")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        sh("ip", "-n", name, "route", "add", "default", "via", self.gateway, "dev", "eth0")
        directory = ETC_NETNS / name
        directory.mkdir(parents=True, exist_ok=True)
        _write_in_place(str(directory / "hosts"), hosts)
        _write_in_place(str(directory / "resolv.conf"), resolv)
        return name

    def set_hosts(self, netns: str, hosts: str) -> None:
        path = ETC_NETNS / netns / "hosts"
        if path.exists():
            _write_in_place(str(path), hosts)

    def remove_pod(self, index: int) -> None:
        name = self.netns_of(index)
        lnetns.delete_netns(name)
        lnetns.remove_etc(name)

    def ensure_jump(self, netns: str) -> None:
        """OUTPUT -> the Service chains (nat, filter), appended once (after proxy-init's)."""
        for table, chain in (("nat", CHAIN), ("filter", REJECT_CHAIN)):
            base = ["ip", "netns", "exec", netns, "iptables", "-w", "5", "-t", table]
            if sh(*base, "-S", chain, check=False).returncode != 0:
                sh(*base, "-N", chain)
            if sh(*base, "-C", "OUTPUT", "-j", chain, check=False).returncode != 0:
                sh(*base, "-A", "OUTPUT", "-j", chain)

    def apply_services(self, netns: str, restore: str) -> None:
        lnetns.apply_services(netns, restore)

    def down(self) -> None:
        for name in lnetns.list_netns(self.prefix):
            lnetns.delete_netns(name)
        for name in lnetns.list_etc(self.prefix):
            lnetns.remove_etc(name)
        with contextlib.suppress(Exception):
            lnetns.delete_netns(self.node)
