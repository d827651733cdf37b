"""`lacewing diagnostics`: what the data plane is doing, read from the proxies' admin servers.

`diagnostics proxy-metrics [-n NS] deploy/NAME|pod/NAME` prints each pod's proxy metrics as
the proxy serves them on its admin port (`pods/<pod>:4191/proxy/metrics` through the API
server), one block per pod under Linkerd's header (`# POD web-5d9f-x2x8k (1 of 2)`).

`diagnostics policy [-n NS] POD PORT`: what one proxy enforces on one inbound port.

How it works: the proxy's admin server answers `GET /policy` with every inbound port it has
asked the policy controller about, each with its current policy and where it came from (the
controller, or the proxy's default while the controller never answered). The command reads
it through the API server (`pods/<pod>:4191/proxy/policy`, as `kubectl get --raw` would) and
prints the port's policy in `lacewing authz`'s table, under one line saying its source:

    pod shop/echo-5d9f-x2x8k port 8080: from the policy controller (stream connected)
    PORT  SERVER            AUTHORIZATION                         CLIENTS
    8080  server/echo-http  authorizationpolicy/echo-from-client  default.shop.serviceaccount...

A port the proxy has not asked about yet (no connection so far, not in its
`LACEWING_PROXY_INBOUND_PORTS`) is one line saying so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import LacewingError, UsageError

__all__ = [
    "PolicyDiagnosticsOptions",
    "ProxyMetricsOptions",
    "command",
    "run_policy",
    "run_proxy_metrics",
]

ADMIN_PORT = 4191


@dataclass(frozen=True)
class PolicyDiagnosticsOptions:
    pod: str
    port: int
    namespace: str = "default"


@dataclass(frozen=True)
class ProxyMetricsOptions:
    resource: str
    namespace: str = "default"


def run_proxy_metrics(options: ProxyMetricsOptions, ctx: GlobalOptions, out: Output) -> int:
    from lacewing.cli.commands.workloads import parse_workload, workload_pods
    from lacewing.k8s.cluster import Cluster

    example = "lacewing diagnostics proxy-metrics -n shop deploy/web"
    kind, name = parse_workload(options.resource, example)
    with Cluster.connect(ctx.kubeconfig, ctx.context) as cluster:
        pods = workload_pods(cluster, kind, name, options.namespace)
        for number, pod in enumerate(pods, 1):
            pod_name = pod["metadata"]["name"]
            try:
                text = cluster.pod_proxy_get(options.namespace, pod_name, ADMIN_PORT, "/metrics")
            except LacewingError as exc:
                raise LacewingError(
                    f"cannot read the proxy metrics of pod {options.namespace}/{pod_name}: "
                    f"{exc.message}",
                    hint="is the pod meshed (lacewing check --proxy) and running?",
                ) from None
            out.line("#")
            out.line(f"# POD {pod_name} ({number} of {len(pods)})")
            out.line("#")
            out.line(text.rstrip("\n"))
    return 0


def run_policy(options: PolicyDiagnosticsOptions, ctx: GlobalOptions, out: Output) -> int:
    from lacewing.cli.commands.authz import HEADER, authz_rows, table
    from lacewing.core.policy import PolicyError, policy_from_dict
    from lacewing.k8s.cluster import Cluster

    where = f"pod {options.namespace}/{options.pod}"
    with Cluster.connect(ctx.kubeconfig, ctx.context) as cluster:
        if cluster.get("v1", "Pod", options.pod, options.namespace) is None:
            raise UsageError(f"{where} not found")
        try:
            text = cluster.pod_proxy_get(options.namespace, options.pod, ADMIN_PORT, "/policy")
        except LacewingError as exc:
            raise LacewingError(
                f"cannot read the proxy's /policy of {where}: {exc.message}",
                hint="is the pod meshed, and its proxy configured with a policy controller?",
            ) from None
    try:
        snapshot: dict[str, Any] = json.loads(text)
        ports = {int(p["port"]): p for p in snapshot["ports"]}
    except (ValueError, KeyError, TypeError):
        raise LacewingError(
            f"the proxy of {where} did not answer /policy with its policy: {text[:80]!r}",
            hint="is the pod meshed, and its proxy configured with a policy controller?",
        ) from None
    entry = ports.get(options.port)
    if entry is None:
        known = ", ".join(map(str, sorted(ports))) or "none"
        out.line(
            f"{where}: the proxy has not asked about port {options.port} yet "
            f"(no connection to it so far; ports it knows: {known})"
        )
        return 0
    try:
        policy = policy_from_dict(entry["policy"])
    except PolicyError as exc:
        raise LacewingError(
            f"the proxy of {where} sent a policy this CLI cannot read: {exc}"
        ) from None
    if entry.get("source") == "controller":
        state = "stream connected" if entry.get("connected") else "controller unreachable, kept"
        source = f"from the policy controller ({state})"
    else:
        source = "the proxy's default: the policy controller has not answered"
    out.line(f"{where} port {options.port}: {source}")
    for line in table([HEADER, *authz_rows([policy])]):
        out.line(line)
    return 0


@click.group("diagnostics")
def command() -> None:
    """Inspect what the data plane is doing."""


@command.command("proxy-metrics")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.argument("resource")
@click.pass_obj
def proxy_metrics_command(g: GlobalOptions | None, namespace: str, resource: str) -> int:
    """The proxy metrics of each pod of a workload (deploy/NAME or pod/NAME)."""
    return run_proxy_metrics(
        ProxyMetricsOptions(resource, namespace), g or GlobalOptions(), Output()
    )


@command.command("policy")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.argument("pod")
@click.argument("port", type=click.IntRange(1, 65535))
@click.pass_obj
def policy_command(g: GlobalOptions | None, namespace: str, pod: str, port: int) -> int:
    """The inbound policy a pod's proxy enforces on PORT now, and where it came from."""
    return run_policy(
        PolicyDiagnosticsOptions(pod, port, namespace), g or GlobalOptions(), Output()
    )
