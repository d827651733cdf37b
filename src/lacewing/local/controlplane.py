"""The local cluster's control plane and identity material.

The control plane runs as ordinary (unmeshed) pods of the cluster, declared as data in
`COMPONENTS`: each entry builds its workload from the cluster's state directory (identity
material in `<dir>/identity/`, the registry in `<dir>/registry.json`).
`with_control_plane(spec, dir)` puts them first in the cluster spec, so they get the first
addresses and start (and become ready) before any meshed pod asks for a certificate.

Policy: the cluster file's policy documents (`ClusterSpec.policy`) are written to
`<dir>/policy.yaml` by `write_policy_file`, which the `lacewing-policy` pod (`controller policy
--source local`) reads with the registry; every proxy gets its address and its pod's name.

Identity: at build time `write_identity_material(dir)` creates a trust anchor, an issuer
signed by it (as `lacewing install` does) and a random token key, all inside the cluster's
state directory; `write_token(dir, pod)` mints a pod's service-account token with
`mint_local_token` (the identity controller runs with `--validator local` and the same key).
Proxies run as uid 2102 and read their token at every renewal, so tokens are owned by 2102,
mode 600; the trust anchors are world-readable (they are public).

`proxy_identity_env(plan, pod, ...)` is the proxy's LACEWING_IDENTITY_* environment. Until
the destination controller provides endpoint identities, `mesh_peers(plan)` tells every proxy
the identity behind each meshed endpoint: the pod addresses and the Service VIPs (all pods of
a workload share its service account, so a VIP's identity is well defined).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lacewing.core.identity import Identity, mint_local_token
from lacewing.errors import UsageError
from lacewing.local.plan import ClusterPlan, PodPlan
from lacewing.local.spec import ClusterSpec, PortSpec, WorkloadSpec

__all__ = [
    "COMPONENTS",
    "CONTROL_PLANE_NAMESPACE",
    "IDENTITY_PORT",
    "PROXY_ENV",
    "Component",
    "mesh_peers",
    "proxy_env",
    "proxy_identity_env",
    "with_control_plane",
    "write_identity_material",
    "write_policy_file",
    "write_token",
]

CONTROL_PLANE_NAMESPACE = "lacewing"
TRUST_DOMAIN = "cluster.local"
IDENTITY_PORT = 8080
DESTINATION_PORT = 8086
POLICY_PORT = 8090
TAP_PORT = 4190
POLICY_FILE = "policy.yaml"  # inside the cluster's state directory
PROXY_UID = 2102
IDENTITY_DIR = "identity"  # inside the cluster's state directory
MAX_IDENTITY_LENGTH = 64  # X.509 upper bound of a CN, which holds the identity


@dataclass(frozen=True)
class Component:
    """A control-plane component: its workload, built from the cluster's state directory."""

    name: str
    workload: Callable[[Path], WorkloadSpec]


def _identity_workload(cluster_dir: Path) -> WorkloadSpec:
    directory = cluster_dir / IDENTITY_DIR
    return WorkloadSpec(
        name="lacewing-identity",
        namespace=CONTROL_PLANE_NAMESPACE,
        service_account="identity",
        meshed=False,
        ports=(PortSpec("grpc", IDENTITY_PORT),),
        command=(
            "python", "-m", "lacewing.cli.main", "controller", "identity",
            "--validator", "local",
            "--local-token-key-file", str(directory / "token.key"),
            "--issuer-dir", str(directory / "issuer"),
            "--trust-anchors-file", str(directory / "ca-bundle.crt"),
            "--trust-domain", TRUST_DOMAIN,
            "--listen-addr", f"0.0.0.0:{IDENTITY_PORT}",
        ),
    )  # fmt: skip


def _destination_workload(cluster_dir: Path) -> WorkloadSpec:
    return WorkloadSpec(
        name="lacewing-destination",
        namespace=CONTROL_PLANE_NAMESPACE,
        service_account="destination",
        meshed=False,
        ports=(PortSpec("grpc", DESTINATION_PORT),),
        command=(
            "python", "-m", "lacewing.cli.main", "controller", "destination",
            "--source", "local",
            "--registry-file", str(cluster_dir / "registry.json"),
            "--trust-domain", TRUST_DOMAIN,
            # mTLS with the proxies: a certificate for destination.lacewing.serviceaccount...
            # from the cluster's issuer, clients verified against its trust anchors
            "--issuer-dir", str(cluster_dir / IDENTITY_DIR / "issuer"),
            "--trust-anchors-file", str(cluster_dir / IDENTITY_DIR / "ca-bundle.crt"),
            "--listen-addr", f"0.0.0.0:{DESTINATION_PORT}",
        ),
    )  # fmt: skip


def _policy_workload(cluster_dir: Path) -> WorkloadSpec:
    return WorkloadSpec(
        name="lacewing-policy",
        namespace=CONTROL_PLANE_NAMESPACE,
        service_account="policy",
        meshed=False,
        ports=(PortSpec("grpc", POLICY_PORT),),
        command=(
            "python", "-m", "lacewing.cli.main", "controller", "policy",
            "--source", "local",
            "--registry-file", str(cluster_dir / "registry.json"),
            "--policy-file", str(cluster_dir / POLICY_FILE),
            "--trust-domain", TRUST_DOMAIN,
            # mTLS as destination's: lacewing-policy.lacewing.serviceaccount... from the issuer
            "--issuer-dir", str(cluster_dir / IDENTITY_DIR / "issuer"),
            "--trust-anchors-file", str(cluster_dir / IDENTITY_DIR / "ca-bundle.crt"),
            "--listen-addr", f"0.0.0.0:{POLICY_PORT}",
        ),
    )  # fmt: skip


COMPONENTS: tuple[Component, ...] = (
    Component("identity", _identity_workload),
    Component("destination", _destination_workload),
    Component("policy", _policy_workload),
)


def write_policy_file(cluster_dir: Path, spec: ClusterSpec) -> Path:
    """The cluster file's policy documents, where the local policy controller reads them."""
    import yaml

    path = cluster_dir / POLICY_FILE
    _write(path, yaml.safe_dump_all([dict(d) for d in spec.policy], sort_keys=False), 0o644)
    return path


def with_control_plane(spec: ClusterSpec, cluster_dir: Path) -> ClusterSpec:
    workloads = tuple(c.workload(cluster_dir) for c in COMPONENTS)
    taken = {w.name for w in workloads}
    for w in spec.workloads:
        if w.name in taken:
            raise UsageError(
                f"cluster file: workload name {w.name!r} is reserved for the control plane"
            )
    for i, w in enumerate(spec.workloads):
        name = Identity(w.namespace, w.account, TRUST_DOMAIN).name
        if w.meshed and len(name) > MAX_IDENTITY_LENGTH:
            raise UsageError(
                f"cluster file: workloads[{i}]: the identity {name} is longer than "
                f"{MAX_IDENTITY_LENGTH} characters (a certificate's CN cannot hold it)",
                hint="give the workload a shorter serviceAccount or namespace",
            )
    return ClusterSpec(workloads=workloads + spec.workloads, routes=spec.routes, policy=spec.policy)


def identity_pod(plan: ClusterPlan) -> PodPlan:
    return plan.pod("lacewing-identity-0")


def write_identity_material(directory: Path) -> None:
    """Trust anchor, issuer and token key for a new cluster (nothing leaves this directory)."""
    from lacewing.tls.pki import generate_issuer, generate_trust_anchor

    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o711)
    anchor = generate_trust_anchor(TRUST_DOMAIN)
    issuer = generate_issuer(anchor, TRUST_DOMAIN)
    (directory / "issuer").mkdir(exist_ok=True)
    (directory / "issuer").chmod(0o700)
    _write(directory / "issuer" / "tls.crt", issuer.cert_pem, 0o600)
    _write(directory / "issuer" / "tls.key", issuer.key_pem, 0o600)
    _write(directory / "ca-bundle.crt", anchor.cert_pem, 0o644)
    # The anchor's key stays here (root only), as an operator keeps it off-cluster: with it a
    # new issuer can be signed (rotation) without a new trust anchor.
    (directory / "anchor").mkdir(exist_ok=True)
    (directory / "anchor").chmod(0o700)
    _write(directory / "anchor" / "tls.key", anchor.key_pem, 0o600)
    _write(directory / "token.key", secrets.token_hex(32), 0o600)
    (directory / "tokens").mkdir(exist_ok=True)
    (directory / "tokens").chmod(0o711)


def _write(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(mode)


def write_token(directory: Path, pod: PodPlan) -> Path:
    key = (directory / "token.key").read_text().strip().encode()
    token = mint_local_token(key, pod.namespace, pod.workload.account)
    path = directory / "tokens" / f"{pod.name}.token"
    _write(path, token, 0o600)
    os.chown(path, PROXY_UID, PROXY_UID)
    return path


def pod_identity(pod: PodPlan) -> Identity:
    return Identity(pod.namespace, pod.workload.account, TRUST_DOMAIN)


def mesh_peers(plan: ClusterPlan) -> str:
    """`host:port=identity,...` for every meshed endpoint: pod addresses and Service VIPs."""
    peers: dict[str, str] = {}
    for pod in plan.pods:
        if pod.meshed:
            for pod_port in pod.workload.ports:
                peers[f"{pod.ip}:{pod_port.port}"] = pod_identity(pod).name
    for service in plan.services:
        selected = [
            p
            for p in plan.pods
            if p.namespace == service.namespace and p.workload.labels == dict(service.selector)
        ]
        if selected and all(p.meshed for p in selected):
            for service_port in service.ports:
                peers[f"{service.cluster_ip}:{service_port.port}"] = pod_identity(selected[0]).name
    return ",".join(f"{k}={v}" for k, v in peers.items())


def proxy_identity_env(plan: ClusterPlan, pod: PodPlan, directory: Path) -> dict[str, str]:
    identity = identity_pod(plan)
    return {
        "LACEWING_IDENTITY_NAME": pod_identity(pod).name,
        "LACEWING_IDENTITY_SVC_ADDR": f"{identity.ip}:{IDENTITY_PORT}",
        "LACEWING_IDENTITY_TRUST_ANCHORS": str(directory / "ca-bundle.crt"),
        "LACEWING_IDENTITY_TOKEN_FILE": str(directory / "tokens" / f"{pod.name}.token"),
        "LACEWING_IDENTITY_PEERS": mesh_peers(plan),
    }


ProxyEnv = Callable[[ClusterPlan, PodPlan, Path], dict[str, str]]

# What each meshed proxy is told about the control plane, one entry per component
# (arguments: the plan, the pod, the cluster's state directory). Destination adds its own.
PROXY_ENV: tuple[ProxyEnv, ...] = (
    lambda plan, pod, cluster_dir: proxy_identity_env(plan, pod, cluster_dir / IDENTITY_DIR),
    lambda plan, pod, cluster_dir: {
        "LACEWING_PROXY_DESTINATION_ADDR": f"{plan.pod('lacewing-destination-0').ip}:"
        f"{DESTINATION_PORT}"
    },
    lambda plan, pod, cluster_dir: {
        "LACEWING_PROXY_POLICY_ADDR": f"{plan.pod('lacewing-policy-0').ip}:{POLICY_PORT}",
        "LACEWING_PROXY_POD_NAME": pod.name,
        "LACEWING_PROXY_POD_NAMESPACE": pod.namespace,
        "LACEWING_PROXY_INBOUND_PORTS": ",".join(str(p.port) for p in pod.workload.ports),
    },
    # tap (`viz tap`): the CLI presents TAP_CLIENT_IDENTITY, issued by this cluster's issuer
    lambda plan, pod, cluster_dir: {"LACEWING_PROXY_TAP_LISTEN_ADDR": f"0.0.0.0:{TAP_PORT}"},
)


def proxy_env(plan: ClusterPlan, pod: PodPlan, cluster_dir: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for build in PROXY_ENV:
        env.update(build(plan, pod, cluster_dir))
    return env
