"""`lacewing viz stat deploy`: golden metrics per workload, from the proxies' own metrics.

With a local cluster selected (`--local [NAME]`, or `$LACEWING_LOCAL_CLUSTER`) it scrapes
every meshed pod's proxy twice, `--window` apart, and prints Linkerd's columns (see
`lacewing.viz.stat` for how each is computed). Without a namespace (`-n`) every namespace is
shown, with a NAMESPACE column. The Kubernetes path (Prometheus) is not built yet: without a
local cluster selected the command says so in one line.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import UsageError
from lacewing.local.control import CLUSTER_ENV, check_machine, selected_cluster
from lacewing.viz.scrape import parse_window, scrape_local
from lacewing.viz.stat import compute
from lacewing.viz.table import render_plain


@dataclass(frozen=True)
class StatOptions:
    resource: str
    namespace: str | None = None
    local: str | None = None
    window: float = 5.0


def run_stat(options: StatOptions, ctx: GlobalOptions, out: Output) -> int:
    kind, _, only = options.resource.partition("/")
    if kind not in ("deploy", "deployment", "deployments"):
        raise UsageError(
            f"cannot stat {options.resource!r}: only deployments are supported",
            hint="lacewing viz stat deploy [-n NAMESPACE]",
        )
    cluster_flag = options.local or os.environ.get(CLUSTER_ENV)
    if not cluster_flag:
        raise UsageError(
            "viz stat needs a local cluster for now: the Kubernetes metrics API is not built",
            hint=f"select one with --local [NAME] or {CLUSTER_ENV}=NAME (see docs/local.md)",
        )
    cluster = selected_cluster(cluster_flag)
    check_machine()
    before = scrape_local(cluster, options.namespace)
    started = time.monotonic()
    time.sleep(options.window)
    after = scrape_local(cluster, options.namespace)
    rows = compute(before, after, time.monotonic() - started)
    if only:
        rows = [r for r in rows if r.name == only]
    if not rows:
        where = f" in namespace {options.namespace}" if options.namespace else ""
        out.warn(f"No resources found{where}.")
        return 0
    out.out.write(render_plain(rows, namespace=options.namespace is None))
    return 0


@click.group("viz")
def command() -> None:
    """Observe the mesh: golden metrics per workload."""


@command.command("stat")
@click.argument("resource")
@click.option("-n", "--namespace", default=None, help="Namespace [default: all namespaces].")
@click.option(
    "--local",
    "local",
    is_flag=False,
    flag_value="local",
    default=None,
    help=f"Read a local cluster (default name 'local'; or set {CLUSTER_ENV}).",
)
@click.option("--window", default="5s", show_default=True, help="Time between the two scrapes.")
@click.pass_obj
def stat_command(
    g: GlobalOptions, resource: str, namespace: str | None, local: str | None, window: str
) -> int:
    """Success rate, requests/s and latency per workload: `lacewing viz stat deploy`."""
    options = StatOptions(
        resource=resource,
        namespace=namespace,
        local=local,
        window=parse_window(window, "--window"),
    )
    return run_stat(options, g, Output())
