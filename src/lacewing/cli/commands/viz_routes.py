"""`lacewing viz routes`: per-route success, RPS and latency, from Prometheus, as Linkerd.

    lacewing viz routes svc/web -n shop --local demo
    lacewing viz routes deploy/cli -n shop --to svc/web -o wide

The queries and rows are `lacewing.viz.routes`'; which Prometheus is read is `viz stat`'s
choice (a local cluster's, `--prometheus-url`, or the viz install's on Kubernetes).
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from lacewing.cli.commands.viz import (
    StatOptions,
    _promql_duration,
    _sources,
    prometheus_source_options,
)
from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import UsageError
from lacewing.viz.routes import RoutesRequest, parse_target, render_routes, route_rows
from lacewing.viz.scrape import parse_window
from lacewing.viz.statview import OUTPUTS

__all__ = ["RoutesOptions", "routes_command", "run_routes"]


@dataclass(frozen=True)
class RoutesOptions:
    resource: str
    namespace: str | None = None
    to: str | None = None
    to_namespace: str | None = None
    window: float = 60.0
    output: str = "table"
    local: str | None = None
    prometheus_url: str | None = None


def run_routes(options: RoutesOptions, ctx: GlobalOptions, out: Output) -> int:
    if options.output not in OUTPUTS:
        raise UsageError(f"invalid -o {options.output!r}", hint="use table, wide or json")
    resource = parse_target(options.resource, "RESOURCE")
    to = parse_target(options.to, "--to") if options.to else None
    if to is not None and resource.kind == "service":
        raise UsageError("--to needs a workload or pod (svc/NAME already names the routes)")
    request = RoutesRequest(
        resource=resource,
        namespace=options.namespace or "default",
        window=_promql_duration(options.window),
        to=to,
        to_namespace=options.to_namespace,
    )
    source = StatOptions(resource=options.resource, local=options.local,
                         prometheus_url=options.prometheus_url)  # fmt: skip
    prom, _ = _sources(source, ctx, resource.kind, request.namespace)
    rows = route_rows(prom.query, request, options.window)
    if not rows and options.output != "json":
        out.warn("No route traffic found (only requests that matched an HTTPRoute or GRPCRoute).")
        return 0
    out.out.write(render_routes(rows, options.output))
    return 0


@click.command("routes")
@click.argument("resource")
@click.option("-n", "--namespace", default=None, help="Namespace [default: default].")
@click.option("--to", "to", default=None, help="Only the routes of this Service (svc/NAME).")
@click.option("--to-namespace", default=None, help="Namespace of --to [default: -n].")
@click.option("-t", "--time-window", default="1m", show_default=True, help="Window of the figures.")
@click.option("-o", "--output", default="table", show_default=True, help="table, wide or json.")
@prometheus_source_options
@click.pass_obj
def routes_command(
    g: GlobalOptions,
    resource: str,
    namespace: str | None,
    to: str | None,
    to_namespace: str | None,
    time_window: str,
    output: str,
    local: str | None,
    prometheus_url: str | None,
) -> int:
    """Per-route golden metrics: `viz routes svc/web`, `viz routes deploy/cli --to svc/web`."""
    options = RoutesOptions(
        resource=resource,
        namespace=namespace,
        to=to,
        to_namespace=to_namespace,
        window=parse_window(time_window, "--time-window"),
        output=output,
        local=local,
        prometheus_url=prometheus_url,
    )
    return run_routes(options, g, Output())
