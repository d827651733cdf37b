"""`lacewing controller destination`: serve endpoint streams from Kubernetes or the local registry.

The command parses its flags into `DestinationOptions` and calls `run_destination`, which
checks what it can before listening (the listen address, the TLS material, the kubeconfig),
builds the chosen source from the `SOURCES` table, publishes into one `Hub` and serves the
streaming API until SIGTERM or SIGINT. Every background task is owned by one TaskGroup-like
pair (server + source task) and cancelled on the way out.

    lacewing controller destination --source local --cluster demo --listen-addr 127.0.0.1:8086
    lacewing controller destination --source kubernetes \\
        --identity-addr lacewing-identity.lacewing.svc.cluster.local:8080 \\
        --identity-token-file /var/run/secrets/tokens/lacewing-identity-token \\
        --trust-anchors-file /var/run/lacewing/identity/trust-anchors/ca-bundle.crt

mTLS comes from one of two places (`TLS_SOURCES`): `--identity-addr` asks the identity service
for a certificate with the service-account token, as proxies do (what install renders); the
local runtime's `--issuer-dir` issues one in-process from the issuer's files. Neither: plaintext,
for loopback tests only. The log level is `LACEWING_LOG_LEVEL` (`controller_log_level`).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lacewing.cli.commands.controller_tls import TlsFlags, serve_over, serving_tls
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
    identity_addr: str | None = None
    identity_token_file: Path | None = None
    heartbeat: float = 10.0


Publish = Callable[["Directory"], None]
SourceFactory = Callable[
    [DestinationOptions, GlobalOptions, Publish], Callable[[], Coroutine[Any, Any, None]]
]


def _kubernetes(options: DestinationOptions, ctx: GlobalOptions, publish: Publish) -> Any:
    from lacewing.controller.destination.kubernetes import KubernetesSource
    from lacewing.controller.destination.route_status import RouteStatusReporter
    from lacewing.k8s.status import StatusWriter
    from lacewing.k8s.watch import KindWatch, connect_async

    # Resolve the kubeconfig now, so a missing one is one line before we listen.
    client = connect_async(options.kubeconfig or ctx.kubeconfig, ctx.context)
    kinds = (*KubernetesSource.KINDS, *KubernetesSource.ROUTE_KINDS)
    watches: dict[str, Any] = {k: KindWatch(client, k) for k in kinds}
    writer = StatusWriter(client)
    source = KubernetesSource(watches, publish, trust_domain=options.trust_domain,
                              report=_rejection_logger(),
                              route_status=RouteStatusReporter(writer.submit))  # fmt: skip

    async def run() -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(writer.run(), name="destination-route-status")
                group.create_task(source.run(), name="destination-kubernetes-source")
        finally:
            await client.close()

    return run


def _rejection_logger() -> Callable[[Any], None]:
    """Says once why each rejected route is left out (again only if its verdict changes)."""
    import logging

    log = logging.getLogger("lacewing.controller.destination")
    reported: set[tuple[str, str, str, str, str]] = set()

    def report(verdicts: Any) -> None:
        for v in verdicts:
            key = (v.kind, v.namespace, v.name, v.reason, v.message)
            if not v.accepted and key not in reported:
                reported.add(key)
                what = "annotations" if v.kind == "Service" else ""
                log.warning("%s %s/%s %snot accepted (%s): %s", v.kind, v.namespace, v.name,
                            what + " " if what else "", v.reason, v.message)  # fmt: skip

    return report


def _local(options: DestinationOptions, ctx: GlobalOptions, publish: Publish) -> Any:
    from lacewing.controller.destination.local import LocalSource, registry_path

    path = options.registry_file or registry_path(options.cluster)
    return LocalSource(path, publish, trust_domain=options.trust_domain).run


SOURCES: dict[str, SourceFactory] = {
    "kubernetes": _kubernetes,  # Services, EndpointSlices, Pods, HTTPRoutes (list + watch)
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
    from lacewing.core.identity import DESTINATION_SERVICE_ACCOUNT

    tls_source = serving_tls(_tls_flags(options), DESTINATION_SERVICE_ACCOUNT, ctx.namespace)

    async def serve() -> None:
        await serve_over(tls_source, "destination", out, stop, _serve)

    async def _serve(ssl_context: ssl.SSLContext | None) -> None:
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


def _tls_flags(options: DestinationOptions) -> TlsFlags:
    return TlsFlags(
        trust_domain=options.trust_domain,
        issuer_dir=options.issuer_dir,
        trust_anchors_file=options.trust_anchors_file,
        identity_addr=options.identity_addr,
        identity_token_file=options.identity_token_file,
    )


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
@click.option(
    "--identity-addr",
    default=None,
    help="Serve over mTLS with a certificate from this identity service (HOST:PORT).",
)
@click.option(
    "--identity-token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="With --identity-addr: the service-account token proving destination's identity.",
)
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
    identity_addr: str | None,
    identity_token_file: Path | None,
    verbose: bool,
) -> int:
    """Service discovery: stream endpoints per authority (GET /v1/endpoints?authority=)."""
    from lacewing.cli.commands.controller import controller_log_level

    configure_logging(verbose, controller_log_level(os.environ))
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
        identity_addr=identity_addr,
        identity_token_file=identity_token_file,
    )
    return run_destination(options, g or GlobalOptions(), Output())
