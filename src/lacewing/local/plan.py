"""From a cluster file to the cluster's layout: names, addresses, files and nat rules (pure).

`plan_cluster(name, spec)` decides everything that does not depend on what is running:

    node netns   lwl-<cluster>-node     bridge lwbr0, no address, no link to the host
    pod netns    lwl-<cluster>-<pod>    lweth0 = 10.42.0.<10+i>/24, route 10.43.0.0/24 dev lweth0
    Service VIP  10.43.0.<10+j>         one per workload with ports (kube-proxy style, no device)

Pods are `<workload>-<replica>`, numbered in file order, so a restarted pod keeps its address.
Every pod's `/etc/netns/<netns>/hosts` maps `name`, `name.ns` and `name.ns.svc.cluster.local`
to each Service's VIP (`ip netns exec` bind-mounts it over /etc/hosts), so a Service name
resolves without a DNS server.

Service VIPs are DNAT rules in each pod's own nat OUTPUT chain, in our chain
`lw-<cluster>-svc`, jumped to AFTER proxy-init's jump: in a meshed pod the app's connection to
a VIP is first REDIRECTed to its proxy (whose SO_ORIGINAL_DST is then the VIP), while the
proxy's own connection (uid 2102, RETURNed by proxy-init) and every connection of an unmeshed
pod falls through to the DNAT. With n ready endpoints rule k (0-based) matches with
probability 1/(n-k), so each endpoint gets 1/n of new connections, as kube-proxy does.
`services_restore(...)` renders the chain for `iptables-restore --noflush`, which replaces it
in one atomic step whenever readiness changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lacewing.core.registry import (
    PodEntry,
    Registry,
    ServiceEntry,
    ServicePort,
    WorkloadRef,
)
from lacewing.errors import UsageError
from lacewing.local.spec import ClusterSpec, WorkloadSpec

__all__ = [
    "BRIDGE",
    "POD_IFACE",
    "POD_SUBNET",
    "SERVICE_SUBNET",
    "ClusterPlan",
    "PodPlan",
    "check_cluster_name",
    "hosts_file",
    "netns_prefix",
    "plan_cluster",
    "resolv_conf",
    "services_chain",
    "services_restore",
]

POD_SUBNET = "10.42.0"  # /24, as K3s's default pod CIDR starts
SERVICE_SUBNET = "10.43.0"  # /24, as K3s's default service CIDR starts
FIRST_HOST = 10
BRIDGE = "lwbr0"
POD_IFACE = "lweth0"
CLUSTER_DOMAIN = "cluster.local"
_CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")


def check_cluster_name(name: str) -> str:
    if not _CLUSTER_NAME.match(name):
        raise UsageError(
            f"invalid cluster name {name!r}",
            hint="use 1-12 lowercase letters and digits, starting with a letter",
        )
    return name


def netns_prefix(cluster: str) -> str:
    """Every namespace of the cluster starts with this (`lwl-<cluster>-`)."""
    return f"lwl-{cluster}-"


@dataclass(frozen=True)
class PodPlan:
    name: str
    workload: WorkloadSpec
    replica: int
    ip: str
    netns: str
    veth: str  # the bridge end, inside the node namespace

    @property
    def namespace(self) -> str:
        return self.workload.namespace

    @property
    def meshed(self) -> bool:
        return self.workload.meshed

    def env(self, cluster: str) -> dict[str, str]:
        """What the app sees, like the downward API: its own name, namespace, address."""
        return {
            **self.workload.env,
            "POD_NAME": self.name,
            "POD_NAMESPACE": self.namespace,
            "POD_IP": self.ip,
            "POD_REPLICA": str(self.replica),
            "LACEWING_LOCAL_CLUSTER": cluster,
        }

    def entry(self, ready: bool) -> PodEntry:
        return PodEntry(
            name=self.name,
            namespace=self.namespace,
            ip=self.ip,
            labels=self.workload.labels,
            service_account=self.workload.account,
            ready=ready,
            meshed=self.meshed,
            workload=WorkloadRef("Deployment", self.workload.name),
        )


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    node_netns: str
    pods: tuple[PodPlan, ...]
    services: tuple[ServiceEntry, ...]
    workloads: tuple[WorkloadSpec, ...] = ()  # every workload of the file, even at 0 replicas

    def pod(self, name: str) -> PodPlan:
        for pod in self.pods:
            if pod.name == name:
                return pod
        known = ", ".join(p.name for p in self.pods)
        raise UsageError(f"no pod named {name!r} in cluster {self.name}", hint=f"pods: {known}")

    def registry(self, revision: int, ready: Mapping[str, bool]) -> Registry:
        return Registry(
            cluster=self.name,
            revision=revision,
            services=self.services,
            pods=tuple(pod.entry(ready.get(pod.name, False)) for pod in self.pods),
        )


def plan_cluster(name: str, spec: ClusterSpec) -> ClusterPlan:
    check_cluster_name(name)
    prefix = netns_prefix(name)
    pods: list[PodPlan] = []
    services: list[ServiceEntry] = []
    for workload in spec.workloads:
        for replica in range(workload.replicas):
            index = len(pods)
            pod_name = f"{workload.name}-{replica}"
            pods.append(
                PodPlan(
                    name=pod_name,
                    workload=workload,
                    replica=replica,
                    ip=f"{POD_SUBNET}.{FIRST_HOST + index}",
                    netns=prefix + pod_name,
                    veth=f"lwv{index}",
                )
            )
        if workload.ports:
            services.append(
                ServiceEntry(
                    name=workload.name,
                    namespace=workload.namespace,
                    cluster_ip=f"{SERVICE_SUBNET}.{FIRST_HOST + len(services)}",
                    ports=tuple(
                        ServicePort(p.name, p.port, p.port, p.opaque) for p in workload.ports
                    ),
                    selector=workload.labels,
                    annotations=dict(workload.service_annotations),
                )
            )
    return ClusterPlan(
        name=name,
        node_netns=prefix + "node",
        pods=tuple(pods),
        services=tuple(services),
        workloads=spec.workloads,
    )


def service_names(service: ServiceEntry) -> tuple[str, ...]:
    return (
        service.name,
        f"{service.name}.{service.namespace}",
        f"{service.name}.{service.namespace}.svc",
        f"{service.name}.{service.namespace}.svc.{CLUSTER_DOMAIN}",
    )


def hosts_file(pod: PodPlan, services: tuple[ServiceEntry, ...]) -> str:
    """The pod's /etc/hosts. Short names resolve only within the pod's own namespace."""
    lines = [
        "# written by lacewing local; bind-mounted by `ip netns exec`",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{pod.ip}\t{pod.name}",
    ]
    for service in services:
        names = service_names(service)
        if service.namespace != pod.namespace:
            names = names[1:]
        lines.append(f"{service.cluster_ip}\t" + " ".join(names))
    return "\n".join(lines) + "\n"


def resolv_conf(pod: PodPlan) -> str:
    """Search domains as in a Kubernetes pod; no name server (names come from hosts)."""
    ns = pod.namespace
    return (
        "# written by lacewing local: Service names are in /etc/hosts\n"
        f"search {ns}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\n"
        "options ndots:5 timeout:1 attempts:1\n"
    )


def services_chain(cluster: str) -> str:
    return f"lw-{cluster}-svc"


def _dnat_rules(chain: str, service: ServiceEntry, endpoints: list[PodEntry]) -> list[str]:
    rules: list[str] = []
    for port in service.ports:
        match = (
            f"-A {chain} -d {service.cluster_ip}/32 -p tcp -m tcp --dport {port.port}"
            f' -m comment --comment "{service.namespace}/{service.name}:{port.name}"'
        )
        count = len(endpoints)
        for k, pod in enumerate(endpoints):
            chance = ""
            if k < count - 1:
                chance = f" -m statistic --mode random --probability {1 / (count - k):.11f}"
            rules.append(f"{match}{chance} -j DNAT --to-destination {pod.ip}:{port.target_port}")
    return rules


def services_restore(cluster: str, registry: Registry) -> str:
    """`iptables-restore --noflush` input that replaces the Service chain with ready endpoints."""
    chain = services_chain(cluster)
    lines = ["*nat", f":{chain} - [0:0]"]
    for service in registry.services:
        lines += _dnat_rules(chain, service, registry.endpoints(service))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
