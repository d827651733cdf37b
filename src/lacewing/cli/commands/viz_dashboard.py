"""`lacewing viz dashboard`: the web dashboard on 127.0.0.1 here, and its URL printed.

On Kubernetes, when the viz install's `web` pod runs (and neither `--here`, `--local` nor
`--prometheus-url` is given), the local server only forwards each request to that pod through
the API server's pod proxy (`lacewing.viz.dashboard.forward`): the dashboard of the cluster,
with the kubeconfig's credentials, as `kubectl port-forward` would. Otherwise the dashboard
itself (`lacewing.viz.dashboard`) runs here (what the web pod runs, with `--here`), in the
foreground, until SIGINT or SIGTERM. Its figures come from the Prometheus `viz stat` would
ask (`--local [NAME]` or
`$LACEWING_LOCAL_CLUSTER`: the cluster's own, in its node namespace; `--prometheus-url`;
otherwise the Kubernetes viz install's, through the API server's pod proxy, so no
port-forward is needed for the data), and which resources exist (MESHED) from the local
cluster's status or the Kubernetes API, as `viz stat`'s. Its live tap is `viz tap`'s
(`lacewing.viz.tapstream`): tapped here on a local cluster, else through the viz install's
tap relay (the web pod's service account may read the tap token and proxy to the tap pod).
It listens on 127.0.0.1 (`--address`) and `--port` (default 50750, Linkerd's; 0 picks a free
one), prints `lacewing dashboard: http://127.0.0.1:PORT/` on stdout (flushed) and opens a
browser unless `--no-browser` (or no display is set).
"""

from __future__ import annotations

import os
import signal
import threading
import webbrowser
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import click

from lacewing.cli.commands.viz import (
    StatOptions,
    _kubernetes_prometheus,
    _sources,
    kubernetes_inventory,
    local_inventory,
    prometheus_source_options,
)
from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import RuntimeEnvError
from lacewing.local.control import CLUSTER_ENV, selected_cluster
from lacewing.viz.dashboard.api import Api, Source
from lacewing.viz.dashboard.forward import Forward, web_pod
from lacewing.viz.dashboard.server import DashboardServer, Handles, running
from lacewing.viz.summary import InventoryItem
from lacewing.viz.taprelay import TapQuery
from lacewing.viz.tapstream import Opened, tap_events

__all__ = [
    "DashboardOptions",
    "dashboard_command",
    "dashboard_source",
    "open_server",
    "run_dashboard",
]

DEFAULT_PORT = 50750
Event = dict[str, Any]


@dataclass(frozen=True)
class DashboardOptions:
    port: int = DEFAULT_PORT
    address: str = "127.0.0.1"
    browser: bool = True
    local: str | None = None
    prometheus_url: str | None = None
    here: bool = False


def dashboard_source(options: DashboardOptions, ctx: GlobalOptions) -> Source:
    local = options.local or os.environ.get(CLUSTER_ENV)
    if local:
        cluster = selected_cluster(local)
        stat = StatOptions(resource="ns", local=local, prometheus_url=options.prometheus_url)
        prom, _ = _sources(stat, ctx, "namespace", None)

        def local_items(kind: str, namespace: str | None) -> Sequence[InventoryItem]:
            items = local_inventory(cluster, kind)
            if namespace is None or kind == "namespace":
                return items
            return [i for i in items if i.namespace == namespace]

        def local_tap(query: TapQuery, opened: Opened, heartbeat: float) -> Iterator[Event]:
            return tap_events(query, cluster, lambda: None, opened, heartbeat)

        return Source(prom, local_items, local_tap)
    prom, api = _kubernetes_prometheus(ctx, options.prometheus_url)

    def kube_items(kind: str, namespace: str | None) -> Sequence[InventoryItem]:
        return kubernetes_inventory(api, kind, namespace)

    def kube_tap(query: TapQuery, opened: Opened, heartbeat: float) -> Iterator[Event]:
        return tap_events(query, None, lambda: api, opened, heartbeat)

    return Source(prom, kube_items, kube_tap)


def open_server(api: Handles, address: str, port: int) -> DashboardServer:
    try:
        return DashboardServer(api, address, port)
    except OSError as exc:
        raise RuntimeEnvError(
            f"cannot listen on {address}:{port}: {exc.strerror or exc}",
            hint="choose another --port (0 picks a free one)",
        ) from None


def _in_cluster(options: DashboardOptions, ctx: GlobalOptions, out: Output) -> Forward | None:
    """The viz install's web pod to forward to, when that is what is asked."""
    if options.here or options.prometheus_url or options.local or os.environ.get(CLUSTER_ENV):
        return None
    from lacewing.cli.commands.viz_install import connect
    from lacewing.viz.install_components import WEB_PORT

    cluster = connect(ctx)
    pod = web_pod(cluster)
    if pod is None:
        out.warn("the viz install runs no ready web pod (`lacewing viz check`): "
                 "serving the dashboard here")  # fmt: skip
        return None
    return Forward(cluster, pod, WEB_PORT)


def run_dashboard(options: DashboardOptions, ctx: GlobalOptions, out: Output) -> int:
    forward = _in_cluster(options, ctx, out)
    api: Handles
    if forward is not None:
        api, where = forward, f"the viz install's dashboard: {forward.where}"
    else:
        source = dashboard_source(options, ctx)
        api, where = Api(source), f"figures from Prometheus at {source.prometheus.where}"
    server = open_server(api, options.address, options.port)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with running(server):
            out.line(f"lacewing dashboard: {server.url}")
            out.warn(f"{where}; Ctrl-C stops it")
            out.out.flush()
            if options.browser and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
                webbrowser.open(server.url)
            while not stop.wait(3600):
                pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


@click.command("dashboard")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="0: any free port.")
@click.option("--address", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option("--no-browser", is_flag=True, help="Only print the URL.")
@prometheus_source_options
@click.option("--here", is_flag=True, help="Serve it from this process, not the cluster's.")
@click.pass_obj
def dashboard_command(
    g: GlobalOptions,
    port: int,
    address: str,
    no_browser: bool,
    local: str | None,
    prometheus_url: str | None,
    here: bool,
) -> int:
    """Open the web dashboard and print its URL: `lacewing viz dashboard [--local]`."""
    options = DashboardOptions(port, address, not no_browser, local, prometheus_url, here)
    return run_dashboard(options, g, Output())
