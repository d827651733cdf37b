"""`lacewing controller destination`: serve endpoint streams from Kubernetes or the local registry.

The command parses its flags into `DestinationOptions` and calls `run_destination`, which
checks what it can before listening (the listen address, the TLS material, the kubeconfig),
builds the chosen source from the `SOURCES` table, publishes into one `Hub` and serves the
streaming API until SIGTERM or SIGINT. Every background task is owned by one TaskGroup-like
pair (server + source task) and cancelled on the way out.

    lacewing controller destination --source local --cluster demo --listen-addr 127.0.0.1:8086
    lacewing controller destination --source kubernetes \\
        --issuer-dir /var/run/lacewing/identity/issuer \\
        --trust-anchors-file /var/run/lacewing/identity/trust-anchors/ca-bundle.crt
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.cli.serving import configure_logging, parse_listen_addr, serve_until_signalled
from lacewing.errors import UsageError

if TYPE_CHECKING:
    from lacewing.controller.destination.directory import Directory

__all__ = ["SOURCES", "DestinationOptions", "destination_command", "run_destination"]


@dataclass(frozen=True)
class DestinationOptions:
    source: str = "kubernetes"
    listen_addr: str = "0.0.0.0:8086"
    cluster: str = "local"
    registry_file: Path | None = None
    kubeconfig: str | None = None
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"
    issuer_dir: Path | None = None
    trust_anchors_file: Path | None = None
    heartbeat: float = 10.0


Publish = Callable[["Directory"], None]
SourceFactory = Callable[
    [DestinationOptions, GlobalOptions, Publish], Callable[[], Coroutine[Any, Any, None]]
]


def _kubernetes(options: DestinationOptions, ctx: GlobalOptions, publish: Publish) -> Any:
    from lacewing.controller.destination.kubernetes import KubernetesSource
    from lacewing.k8s.watch import KindWatch, connect_async

    # Resolve the kubeconfig now, so a missing one is one line before we listen.
    client = connect_async(options.kubeconfig or ctx.kubeconfig, ctx.context)
    watches: dict[str, Any] = {k: KindWatch(client, k) for k in KubernetesSource.KINDS}
    source = KubernetesSource(watches, publish, trust_domain=options.trust_domain)

    async def run() -> None:
        try:
            await source.run()
        finally:
            await client.close()

    return run


def _local(options: DestinationOptions, ctx: GlobalOptions, publish: Publish) -> Any:
    from lacewing.controller.destination.local import LocalSource, registry_path

    path = options.registry_file or registry_path(options.cluster)
    return LocalSource(path, publish, trust_domain=options.trust_domain).run


SOURCES: dict[str, SourceFactory] = {
    "kubernetes": _kubernetes,  # Services, EndpointSlices, Pods (list + watch)
    "local": _local,  # the local runtime's registry.json, polled by mtime
}


def run_destination(
    options: DestinationOptions,
    ctx: GlobalOptions,
    out: Output,
    *,
    stop: asyncio.Event | None = None,
) -> int:
    from lacewing.controller.destination.server import DestinationServer, Hub

    host, port = parse_listen_addr(options.listen_addr, "0.0.0.0:8086")
    factory = SOURCES.get(options.source)
    if factory is None:
        raise UsageError(f"unknown source {options.source!r}; choose one of {', '.join(SOURCES)}")
    if (options.issuer_dir is None) != (options.trust_anchors_file is None):
        raise UsageError(
            "--issuer-dir and --trust-anchors-file go together",
            hint="pass both to serve over mTLS, or neither for plaintext (loopback only)",
        )
    ssl_context = None
    if options.issuer_dir is not None and options.trust_anchors_file is not None:
        from lacewing.controller.destination.tls import serving_context
        from lacewing.core.identity import DESTINATION_SERVICE_ACCOUNT, Identity, IdentityParseError

        try:
            identity = Identity(ctx.namespace, DESTINATION_SERVICE_ACCOUNT, options.trust_domain)
        except IdentityParseError as exc:
            raise UsageError(f"--trust-domain / namespace: {exc}") from None
        ssl_context = serving_context(options.issuer_dir, options.trust_anchors_file, identity)

    async def serve() -> None:
        hub = Hub()
        server = DestinationServer(
            hub,
            host,
            port,
            ssl_context=ssl_context,
            heartbeat=options.heartbeat,
            cluster_domain=options.cluster_domain,
        )
        scheme = "https (mTLS)" if ssl_context else "http"
        await serve_until_signalled(
            server,
            out,
            lambda bound: (
                f"destination ({options.source} source) listening on {scheme}://{host}:{bound}"
            ),
            name="destination",
            stop=stop,
            companion=factory(options, ctx, hub.publish),
            companion_name=f"destination-source-{options.source}",
        )

    asyncio.run(serve())
    return 0


@click.command("destination")
@click.option(
    "--source",
    type=click.Choice(list(SOURCES)),
    default="kubernetes",
    show_default=True,
    help="Where endpoints come from.",
)
@click.option("--listen-addr", default="0.0.0.0:8086", show_default=True)
@click.option("--cluster", default="local", show_default=True, help="For --source local.")
@click.option(
    "--registry-file",
    type=click.Path(path_type=Path),
    default=None,
    help="For --source local (default /run/lacewing/local/<cluster>/registry.json).",
)
@click.option("--kubeconfig", "kubeconfig", default=None, help="For --source kubernetes.")
@click.option("--trust-domain", default="cluster.local", show_default=True)
@click.option("--cluster-domain", default="cluster.local", show_default=True)
@click.option(
    "--issuer-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Serve over mTLS with a certificate from this identity issuer (tls.crt, tls.key).",
)
@click.option("--trust-anchors-file", type=click.Path(path_type=Path), default=None)
@click.option("-v", "--verbose", is_flag=True, help="Log source and stream events.")
@click.pass_obj
def destination_command(
    g: GlobalOptions | None,
    source: str,
    listen_addr: str,
    cluster: str,
    registry_file: Path | None,
    kubeconfig: str | None,
    trust_domain: str,
    cluster_domain: str,
    issuer_dir: Path | None,
    trust_anchors_file: Path | None,
    verbose: bool,
) -> int:
    """Service discovery: stream endpoints per authority (GET /v1/endpoints?authority=)."""
    configure_logging(verbose)
    options = DestinationOptions(
        source=source,
        listen_addr=listen_addr,
        cluster=cluster,
        registry_file=registry_file,
        kubeconfig=kubeconfig,
        trust_domain=trust_domain,
        cluster_domain=cluster_domain,
        issuer_dir=issuer_dir,
        trust_anchors_file=trust_anchors_file,
    )
    return run_destination(options, g or GlobalOptions(), Output())
