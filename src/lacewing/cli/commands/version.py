"""`lacewing version`: the client's version, the control plane's if reachable, and which build
of the proxy this install runs (`lacewing.proxy.build`: its hot path compiled with mypyc, or
pure Python; not with `--client` or `--short`).

The server version is the `version` key of the `lacewing-config` ConfigMap in the control
plane namespace; any failure to read it prints `unavailable` (as Linkerd does), never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import click

from lacewing import __version__
from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import LacewingError


@dataclass(frozen=True)
class VersionOptions:
    client_only: bool = False
    short: bool = False


ServerVersionSource = Callable[[GlobalOptions], str | None]
ProxyBuildSource = Callable[[], str]


def _proxy_build() -> str:
    from lacewing.proxy.build import current

    return current().describe()


def _server_version_from_cluster(g: GlobalOptions) -> str | None:
    from lacewing.k8s.cluster import Cluster, read_control_plane_version

    with Cluster.connect(g.kubeconfig, g.context, timeout=5.0) as cluster:
        return read_control_plane_version(cluster, g.namespace)


def run(
    options: VersionOptions,
    ctx: GlobalOptions,
    out: Output,
    server_version: ServerVersionSource = _server_version_from_cluster,
    proxy_build: ProxyBuildSource = _proxy_build,
) -> int:
    if options.short:
        out.line(__version__)
    else:
        out.line(f"Client version: {__version__}")
    if options.client_only:
        return 0
    try:
        server = server_version(ctx)
    except LacewingError:  # no config, unreachable, forbidden: "unavailable", as in Linkerd
        server = None
    if options.short:
        out.line(server or "unavailable")
    else:
        out.line(f"Server version: {server or 'unavailable'}")
        out.line(f"Proxy build: {proxy_build()}")
    return 0


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Print the client version only.")
@click.option("--short", is_flag=True, help="Print the version numbers only.")
@click.pass_obj
def command(g: GlobalOptions, client_only: bool, short: bool) -> int:
    """Print the client and server version information."""
    return run(VersionOptions(client_only=client_only, short=short), g, Output())
