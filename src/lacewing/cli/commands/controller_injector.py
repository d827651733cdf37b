"""`lacewing controller proxy-injector`: the mutating admission webhook, in this process.

How it works: the flags become a frozen `InjectorOptions`; `run_proxy_injector` connects to the
Kubernetes API (in-cluster service account, or `--kubeconfig`), reads the install values once
so that a missing `lacewing-config` is one clear line at start-up rather than a pod that never
gets a proxy, loads the serving certificate from `--tls-dir`, and serves
(`lacewing.controller.injector.server.InjectorServer`) until SIGTERM or SIGINT, then drains.
The control plane's namespace is the global `-L` flag, as for every controller.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.cli.serving import configure_logging, parse_listen_addr, serve_until_signalled

if TYPE_CHECKING:
    from lacewing.controller.injector.admission import Lookup

__all__ = ["InjectorOptions", "proxy_injector_command", "run_proxy_injector"]


@dataclass(frozen=True)
class InjectorOptions:
    listen_addr: str = "0.0.0.0:8443"
    tls_dir: Path = Path("/var/run/lacewing/tls")
    native_sidecar: bool = False
    kubeconfig: str | None = None


def _connect(options: InjectorOptions, ctx: GlobalOptions) -> Lookup:
    from lacewing.k8s.cluster import Cluster

    return Cluster.connect(options.kubeconfig or ctx.kubeconfig, ctx.context)


STARTUP_API_WAIT = 30.0  # seconds the first read of lacewing-config may wait for the API


async def _first_values(admission: Any, out: Output, wait: float = STARTUP_API_WAIT) -> None:
    """Read the install values once before serving. An API that cannot be reached yet is
    waited for (the pod's own proxy, which its traffic to the API server passes, may still be
    starting: Kubernetes starts the containers together); a refusal fails at once."""
    from lacewing.errors import ClusterUnreachable

    loop = asyncio.get_running_loop()
    deadline, delay = loop.time() + wait, 0.25
    while True:
        try:
            await admission.values()
            return
        except ClusterUnreachable as exc:
            if loop.time() + delay > deadline:
                raise
            out.warn(f"waiting for the Kubernetes API: {exc.message}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def run_proxy_injector(
    options: InjectorOptions,
    ctx: GlobalOptions,
    out: Output,
    *,
    stop: asyncio.Event | None = None,
    connect: Callable[[InjectorOptions, GlobalOptions], Lookup] = _connect,
) -> int:
    from lacewing.controller.injector.admission import Admission
    from lacewing.controller.injector.server import InjectorServer, TlsFiles

    host, port = parse_listen_addr(options.listen_addr, "0.0.0.0:8443")
    tls = TlsFiles(options.tls_dir)
    tls.context()
    admission = Admission(
        connect(options, ctx), ctx.namespace, native_sidecar=options.native_sidecar
    )

    async def serve() -> None:
        await _first_values(admission, out)  # no lacewing-config: fail now, with the reason
        await serve_until_signalled(
            InjectorServer(admission, tls, host, port),
            out,
            lambda bound: (
                f"proxy injector for namespace {ctx.namespace} listening on {host}:{bound}"
            ),
            name="proxy-injector",
            stop=stop,
        )

    asyncio.run(serve())
    return 0


@click.command("proxy-injector")
@click.option("--listen-addr", default="0.0.0.0:8443", show_default=True)
@click.option(
    "--tls-dir",
    type=click.Path(path_type=Path),
    default=InjectorOptions.tls_dir,
    show_default=True,
    help="Directory holding the webhook's tls.crt and tls.key.",
)
@click.option(
    "--proxy-native-sidecar",
    "native_sidecar",
    is_flag=True,
    help="Run proxies as native sidecars (init containers that keep running), for Jobs.",
)
@click.option("--kubeconfig", default=None, help="Outside a cluster: the kubeconfig to use.")
@click.option("-v", "--verbose", is_flag=True, help="Log every decision.")
@click.pass_obj
def proxy_injector_command(
    g: GlobalOptions | None,
    listen_addr: str,
    tls_dir: Path,
    native_sidecar: bool,
    kubeconfig: str | None,
    verbose: bool,
) -> int:
    """The proxy injector: a mutating webhook that adds the proxy to annotated pods."""
    from lacewing.cli.commands.controller import controller_log_level

    configure_logging(verbose, controller_log_level(os.environ))
    options = InjectorOptions(listen_addr, tls_dir, native_sidecar, kubeconfig)
    return run_proxy_injector(options, g or GlobalOptions(), Output())
