"""`lacewing viz stat` and `viz edges`: golden metrics and edges, from Prometheus, as Linkerd.

`stat RESOURCE[/NAME]` (deploy, sts, ds, pod, ns, svc, authority) with `-n NS` or `-A`,
`--from` / `--to` (and their `--*-namespace`), `-t` the time window (default 1m) and
`-o table|wide|json`. The PromQL is `lacewing.viz.promql`'s; the answers become rows in
`lacewing.viz.summary`. Which Prometheus, and who says which resources exist (MESHED):

- a local cluster (`--local [NAME]` or `$LACEWING_LOCAL_CLUSTER`): the Prometheus its
  supervisor runs in the node namespace (or `--prometheus-url`), the pods of its status.json;
- otherwise Kubernetes: `--prometheus-url`, else the installed viz's `prometheusUrl`, else
  its Prometheus pod in `lacewing-viz` through the API server's pod proxy; the workloads and
  pods from the API.

`edges KIND` (deploy, sts, ds, pod) lists (source, destination, SECURED) from the same
Prometheus (`lacewing.viz.edges`). `install`, `uninstall` and `check` live in
`lacewing.cli.commands.viz_install`, `dashboard` in `lacewing.cli.commands.viz_dashboard`
(added to this group here).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import UsageError
from lacewing.local import prometheus as local_prometheus
from lacewing.local.control import CLUSTER_ENV, check_machine, read_pods, selected_cluster
from lacewing.local.plan import netns_prefix
from lacewing.local.state import ClusterState
from lacewing.viz.edges import edges, edges_query, render_edges
from lacewing.viz.prometheus import HttpPrometheus, NodePrometheus, Prometheus
from lacewing.viz.promql import StatRequest, parse_resource
from lacewing.viz.scrape import parse_window
from lacewing.viz.statquery import stat_rows
from lacewing.viz.statview import OUTPUTS, render
from lacewing.viz.summary import InventoryItem


@dataclass(frozen=True)
class StatOptions:
    resource: str
    namespace: str | None = None
    all_namespaces: bool = False
    to: str | None = None
    to_namespace: str | None = None
    source: str | None = None
    from_namespace: str | None = None
    window: float = 60.0
    output: str = "table"
    local: str | None = None
    prometheus_url: str | None = None


def _promql_duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def local_inventory(cluster: str, kind: str) -> list[InventoryItem]:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for pod in read_pods(cluster):
        key = {
            "deployment": (pod.namespace, pod.workload),
            "pod": (pod.namespace, pod.name),
            "namespace": (pod.namespace, pod.namespace),
        }.get(kind)
        if key is None:
            return []
        counts[key][0] += int(pod.meshed and pod.ready)
        counts[key][1] += 1
    return [InventoryItem(ns, name, m, t) for (ns, name), (m, t) in counts.items()]


_KUBE_KINDS = {"deployment": "Deployment", "statefulset": "StatefulSet", "daemonset": "DaemonSet"}


def kubernetes_inventory(cluster: Any, kind: str, namespace: str | None) -> list[InventoryItem]:
    """Workloads (or pods, namespaces) from the API, meshed = running pods with the proxy."""
    pods = cluster.list("v1", "Pod", namespace=namespace)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for pod in pods:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        ns = str(meta.get("namespace", ""))
        meshed = (
            "lacewing.io/control-plane-ns" in labels
            and (pod.get("status") or {}).get("phase") == "Running"
        )
        if kind == "pod":
            key = (ns, str(meta.get("name", "")))
        elif kind == "namespace":
            key = (ns, ns)
        elif kind in _KUBE_KINDS:
            owner = labels.get(f"lacewing.io/proxy-{kind}")
            if owner is None:
                continue
            key = (ns, str(owner))
        else:
            return []
        counts[key][0] += int(meshed)
        counts[key][1] += 1
    if kind in _KUBE_KINDS:
        for obj in cluster.list("apps/v1", _KUBE_KINDS[kind], namespace=namespace):
            meta = obj.get("metadata") or {}
            key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
            status = obj.get("status") or {}
            total = int(status.get("replicas") or status.get("desiredNumberScheduled") or 0)
            counts[key][1] = max(counts[key][1], total)
    return [InventoryItem(ns, name, m, t) for (ns, name), (m, t) in counts.items()]


def _kubernetes_prometheus(ctx: GlobalOptions, url: str | None) -> tuple[Prometheus, Any]:
    from lacewing.cli.commands.viz_install import KubeVizFacts, connect

    facts = KubeVizFacts(connect(ctx))
    return (HttpPrometheus(url) if url else facts.prometheus()), facts.cluster


def _sources(
    options: StatOptions, ctx: GlobalOptions, kind: str, namespace: str | None
) -> tuple[Prometheus, list[InventoryItem] | None]:
    local = options.local or os.environ.get(CLUSTER_ENV)
    if local:
        cluster = selected_cluster(local)
        check_machine()
        inventory = local_inventory(cluster, kind)
        if namespace is not None:
            inventory = [i for i in inventory if i.namespace == namespace or kind == "namespace"]
        if options.prometheus_url:
            return HttpPrometheus(options.prometheus_url), inventory
        state = ClusterState(cluster)
        if local_prometheus.pid(state.dir) is None:
            raise UsageError(
                f"local cluster {cluster!r} runs no Prometheus: "
                + local_prometheus.describe(state.dir).removeprefix("prometheus: "),
                hint=f"{local_prometheus.INSTALL_HINT}, then bring the cluster down and up again",
            )
        return NodePrometheus(netns_prefix(cluster) + "node"), inventory
    prom, cluster_api = _kubernetes_prometheus(ctx, options.prometheus_url)
    return prom, kubernetes_inventory(cluster_api, kind, namespace)


def run_stat(options: StatOptions, ctx: GlobalOptions, out: Output) -> int:
    if options.output not in OUTPUTS:
        raise UsageError(f"invalid -o {options.output!r}", hint="use table, wide or json")
    resource = parse_resource(options.resource)
    namespace = None if options.all_namespaces else (options.namespace or "default")
    to = parse_resource(options.to, "--to") if options.to else None
    source = parse_resource(options.source, "--from") if options.source else None
    request = StatRequest(
        resource=resource,
        namespace=namespace,
        window=_promql_duration(options.window),
        to=to,
        to_namespace=options.to_namespace,
        source=source,
        from_namespace=options.from_namespace,
    )
    prom, inventory = _sources(options, ctx, resource.kind, namespace)
    rows = stat_rows(prom, request, options.window, inventory)
    if not rows:
        if options.output == "json":
            out.out.write("[]\n")
        else:
            out.warn("No traffic found.")
        return 0
    namespaces = options.all_namespaces and resource.kind != "namespace"
    out.out.write(render(rows, options.output, namespaces=namespaces))
    return 0


@click.group("viz")
def command() -> None:
    """Observe the mesh: golden metrics from Prometheus, and the viz extension."""


def prometheus_source_options(fn: Any) -> Any:
    """`--local [NAME]` and `--prometheus-url URL`: where a viz command reads its figures
    (`_sources`: a local cluster's own Prometheus, a given one, or the viz install's)."""
    fn = click.option("--prometheus-url", default=None, help="Query this Prometheus instead.")(fn)
    return click.option(
        "--local",
        "local",
        is_flag=False,
        flag_value="local",
        default=None,
        help=f"Read a local cluster (default name 'local'; or set {CLUSTER_ENV}).",
    )(fn)


@command.command("stat")
@click.argument("resource")
@click.option("-n", "--namespace", default=None, help="Namespace [default: default].")
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace.")
@click.option("--to", "to", default=None, help="Only traffic to this resource (KIND/NAME).")
@click.option("--to-namespace", default=None, help="Namespace of --to [default: -n].")
@click.option("--from", "source", default=None, help="Only traffic from this resource.")
@click.option("--from-namespace", default=None, help="Namespace of --from [default: -n].")
@click.option("-t", "--time-window", default="1m", show_default=True, help="Window of the figures.")
@click.option("-o", "--output", default="table", show_default=True, help="table, wide or json.")
@prometheus_source_options
@click.pass_obj
def stat_command(
    g: GlobalOptions,
    resource: str,
    namespace: str | None,
    all_namespaces: bool,
    to: str | None,
    to_namespace: str | None,
    source: str | None,
    from_namespace: str | None,
    time_window: str,
    output: str,
    local: str | None,
    prometheus_url: str | None,
) -> int:
    """Success rate, requests/s and latency per resource: `lacewing viz stat deploy`."""
    options = StatOptions(
        resource=resource,
        namespace=namespace,
        all_namespaces=all_namespaces,
        to=to,
        to_namespace=to_namespace,
        source=source,
        from_namespace=from_namespace,
        window=parse_window(time_window, "--time-window"),
        output=output,
        local=local,
        prometheus_url=prometheus_url,
    )
    return run_stat(options, g, Output())


@dataclass(frozen=True)
class EdgesOptions:
    resource: str
    namespace: str | None = None
    all_namespaces: bool = False
    output: str = "table"
    local: str | None = None
    prometheus_url: str | None = None


def run_edges(options: EdgesOptions, ctx: GlobalOptions, out: Output) -> int:
    if options.output not in OUTPUTS:
        raise UsageError(f"invalid -o {options.output!r}", hint="use table, wide or json")
    resource = parse_resource(options.resource)
    if resource.kind not in ("deployment", "statefulset", "daemonset", "pod") or resource.name:
        raise UsageError(
            f"cannot show edges of {options.resource!r}", hint="use deploy, sts, ds or pod"
        )
    namespace = None if options.all_namespaces else (options.namespace or "default")
    source = StatOptions(
        resource=options.resource, local=options.local, prometheus_url=options.prometheus_url
    )
    prom, _ = _sources(source, ctx, resource.kind, namespace)
    rows = edges(resource.kind, prom.query(edges_query(resource.kind, namespace)))
    if options.output == "json":
        out.out.write(json.dumps([asdict(e) for e in rows], indent=2) + "\n")
    elif not rows:
        out.warn("No edges found.")
    else:
        out.out.write(render_edges(rows, wide=options.output == "wide"))
    return 0


@command.command("edges")
@click.argument("resource")
@click.option("-n", "--namespace", default=None, help="Namespace [default: default].")
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace.")
@click.option("-o", "--output", default="table", show_default=True, help="table, wide or json.")
@prometheus_source_options
@click.pass_obj
def edges_command(
    g: GlobalOptions,
    resource: str,
    namespace: str | None,
    all_namespaces: bool,
    output: str,
    local: str | None,
    prometheus_url: str | None,
) -> int:
    """Who talks to whom, and whether it is mutual TLS: `lacewing viz edges deploy`."""
    options = EdgesOptions(resource, namespace, all_namespaces, output, local, prometheus_url)
    return run_edges(options, g, Output())


def _add_install_commands() -> None:
    from lacewing.cli.commands.viz_component import tap_relay_command
    from lacewing.cli.commands.viz_dashboard import dashboard_command
    from lacewing.cli.commands.viz_install import check_command, install_command, uninstall_command
    from lacewing.cli.commands.viz_routes import routes_command
    from lacewing.cli.commands.viz_tap import tap_command, top_command

    for sub in (install_command, uninstall_command, check_command, dashboard_command,
                tap_command, top_command, routes_command, tap_relay_command):  # fmt: skip
        command.add_command(sub)


_add_install_commands()
