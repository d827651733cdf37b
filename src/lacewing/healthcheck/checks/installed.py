"""What an installed control plane looks like, and the facts checks read from it.

The names come from `lacewing.install`, so they cannot drift from what install renders: the
`lacewing-config` ConfigMap with the full install values and the version, the component
Deployments, the proxy container and its version label. Each accessor reads through `Facts`
(so it is cached and refreshed on retries) and raises a `LacewingError` with a hint when the
thing is missing, which makes every check that depends on it fail with the same clear line.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml

from lacewing.errors import LacewingError
from lacewing.healthcheck.facts import Facts
from lacewing.healthcheck.model import Outcome
from lacewing.install import credentials, render, sidecar
from lacewing.install.values import Values

__all__ = [
    "COMPONENTS",
    "CONFIG_MAP",
    "DEFAULT_CLUSTER_NETWORKS",
    "PROXY_CONTAINER",
    "PROXY_VERSION_LABEL",
    "cluster_networks",
    "config_map",
    "control_plane_pods",
    "control_plane_version",
    "proxies_certified",
    "stuck",
    "stuck_containers",
    "values",
]

CONFIG_MAP = render.CONFIG_MAP
ISSUER_SECRET = render.ISSUER_SECRET
COMPONENT_LABEL = render.COMPONENT_LABEL
PROXY_CONTAINER = sidecar.PROXY_CONTAINER_NAME
PROXY_VERSION_LABEL = sidecar.PROXY_VERSION_LABEL
CONTROL_PLANE_NS_LABEL = sidecar.CONTROL_PLANE_NS_LABEL
TRUST_ROOTS_CONFIG_MAP = sidecar.TRUST_ROOTS_CONFIG_MAP
TRUST_ROOTS_KEY = sidecar.TRUST_ROOTS_KEY
# component name -> its Deployment, as install renders them
COMPONENTS: dict[str, str] = {c.name: c.deployment for c in render.COMPONENTS}
# (title, Service, serving-certificate Secret) of each webhook the API server calls; install
# names the Secret `<service>-k8s-tls`
WEBHOOK_ROWS: tuple[tuple[str, str, str], ...] = tuple(
    (service.removeprefix("lacewing-"), service, f"{service}-k8s-tls")
    for service in credentials.WEBHOOK_SERVICES
)
DEFAULT_CLUSTER_NETWORKS = Values().cluster_networks
_INSTALL_HINT = "install the control plane: lacewing install | kubectl apply -f -"
REINSTALL_HINT = "re-apply the install manifests: lacewing upgrade | kubectl apply -f -"
ISSUER_HINT = (
    "re-apply the install manifests (lacewing upgrade | kubectl apply -f -); with an external"
    " issuer, check the cert-manager Certificate (see docs/cert-manager.md)"
)

Obj = dict[str, Any]

# Waiting reasons a container does not leave by itself: waiting longer only delays the failure.
STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


def stuck_containers(pod: Obj) -> list[str]:
    """`pod NS/NAME: container C is in CrashLoopBackOff (message)` for each stuck container."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    found = []
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in STUCK_REASONS:
                message = f" ({waiting['message']})" if waiting.get("message") else ""
                found.append(
                    f"pod {meta.get('namespace')}/{meta.get('name')}: container "
                    f"{cs.get('name')} is in {reason}{message}"
                )
    return found


def stuck_hint(pod_lines: list[str]) -> str:
    return (
        "this will not heal by waiting: kubectl -n NS describe pod POD; "
        "kubectl -n NS logs POD -c CONTAINER --previous"
        + (
            "; is the image on the node? (see the README: loading the image onto K3s)"
            if any("Image" in line for line in pod_lines)
            else ""
        )
    )


def config_map(facts: Facts) -> Obj:
    ns = facts.options.namespace
    found = facts.get("v1", "ConfigMap", CONFIG_MAP, ns)
    if found is None:
        raise LacewingError(
            f'ConfigMap "{CONFIG_MAP}" was not found in namespace "{ns}"', hint=_INSTALL_HINT
        )
    return found


def control_plane_version(facts: Facts) -> str:
    version = (config_map(facts).get("data") or {}).get("version")
    if not version:
        raise LacewingError(
            f'ConfigMap "{CONFIG_MAP}" records no version', hint="re-run `lacewing upgrade`"
        )
    return str(version)


def values(facts: Facts) -> Obj:
    """The install values recorded in the ConfigMap (`data.values`, YAML or JSON)."""
    raw = (config_map(facts).get("data") or {}).get("values")
    if not raw:
        raise LacewingError(
            f'ConfigMap "{CONFIG_MAP}" records no install values', hint="re-run `lacewing upgrade`"
        )
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, dict):
        raise LacewingError(
            f'the install values in ConfigMap "{CONFIG_MAP}" are not a YAML mapping',
            hint="re-run `lacewing upgrade` to rewrite them",
        )
    return parsed


def control_plane_pods(facts: Facts) -> list[Obj]:
    ns = facts.options.namespace
    return facts.list("v1", "Pod", ns, f"{CONTROL_PLANE_NS_LABEL}={ns}")


def cluster_networks(facts: Facts) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The `clusterNetworks` install value (comma-separated CIDRs), with the default."""
    raw = values(facts).get("clusterNetworks") or DEFAULT_CLUSTER_NETWORKS
    text = ",".join(raw) if isinstance(raw, list) else str(raw)
    try:
        return [ipaddress.ip_network(p.strip(), strict=False) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise LacewingError(
            f"clusterNetworks {text!r} is not a list of CIDRs: {exc}",
            hint="fix it with lacewing upgrade --set clusterNetworks=...",
        ) from None


def stuck(pods: list[Obj]) -> Outcome | None:
    """A final failure naming every container that will not heal, or None."""
    lines = [line for pod in pods for line in stuck_containers(pod)]
    if lines:
        return Outcome.give_up("\n".join(lines), hint=stuck_hint(lines))
    return None


def proxies_certified(facts: Facts) -> Outcome:
    """Every control-plane pod's proxy is ready: it reports ready only once it holds a
    certificate from identity (`/ready` is 503 until then), so not ready means not certified."""
    pods = control_plane_pods(facts)
    if not pods:
        return Outcome.fail(f'no control plane pods in namespace "{facts.options.namespace}"')
    found = stuck(pods)
    if found is not None:
        return found
    problems = []
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "?")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        proxy = next((c for c in statuses if c.get("name") == PROXY_CONTAINER), None)
        if proxy is None:
            problems.append(f"pod {name} has no running {PROXY_CONTAINER} container")
        elif not proxy.get("ready"):
            problems.append(f"pod {name}: {PROXY_CONTAINER} has no certificate yet (not ready)")
    return Outcome.fail("\n".join(problems)) if problems else Outcome.ok()
