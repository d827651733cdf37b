"""`lacewing controller policy`: stream per-port inbound policy, and validate policy resources.

The command parses its flags into `PolicyOptions` and calls `run_policy`, which checks what it
can before listening (listen addresses, the default policy and cluster networks, the mTLS
material, the webhook certificate, the kubeconfig), builds the chosen source from the
`SOURCES` table, publishes into one `Hub` and serves until SIGTERM or SIGINT:

- the policy API on `--listen-addr` (`GET /v1/inbound?namespace=&pod=&port=`, JSON lines),
  over mutual TLS as `lacewing-policy.<ns>.serviceaccount.identity.lacewing.<td>` when
  `--trust-anchors-file` is given with `--identity-addr` + `--identity-token-file` (a
  certificate from identity, what install renders) or with `--issuer-dir` (issued in-process,
  the local runtime), plaintext otherwise (loopback use; `controller_tls`);
- the policy-validator admission webhook on `--admission-addr` (HTTPS with `--tls-dir`),
  when that flag is given.

    lacewing controller policy --source local --cluster demo --listen-addr 127.0.0.1:8090
    lacewing controller policy --source kubernetes --listen-addr 0.0.0.0:8090 \\
        --admission-addr 0.0.0.0:9443 --tls-dir /var/run/lacewing/tls \\
        --default-policy all-unauthenticated --cluster-networks 10.0.0.0/8 \\
        --identity-addr lacewing-identity.lacewing.svc.cluster.local:8080 \\
        --identity-token-file /var/run/secrets/tokens/lacewing-identity-token \\
        --trust-anchors-file /var/run/lacewing/identity/trust-anchors/ca-bundle.crt
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
from lacewing.errors import CertificateError, UsageError

if TYPE_CHECKING:
    from lacewing.controller.https import ControllerServer
    from lacewing.core.policy_index import PolicyConfig, PolicyIndex

__all__ = ["SOURCES", "PolicyOptions", "policy_command", "run_policy"]


@dataclass(frozen=True)
class PolicyOptions:
    source: str = "kubernetes"
    listen_addr: str = "0.0.0.0:8090"
    admission_addr: str | None = None
    tls_dir: Path = Path("/var/run/lacewing/tls")
    default_policy: str = "all-unauthenticated"
    cluster_networks: str = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16"
    cluster: str = "local"
    registry_file: Path | None = None
    policy_file: Path | None = None
    kubeconfig: str | None = None
    trust_domain: str = "cluster.local"
    issuer_dir: Path | None = None
    trust_anchors_file: Path | None = None
    identity_addr: str | None = None
    identity_token_file: Path | None = None
    heartbeat: float = 10.0

    @property
    def tls_flags(self) -> TlsFlags:
        return TlsFlags(
            self.trust_domain,
            self.issuer_dir,
            self.trust_anchors_file,
            self.identity_addr,
            self.identity_token_file,
        )


Publish = Callable[["PolicyIndex"], None]
SourceFactory = Callable[
    [PolicyOptions, GlobalOptions, "PolicyConfig", Publish],
    Callable[[], Coroutine[Any, Any, None]],
]


def _kubernetes(
    options: PolicyOptions, ctx: GlobalOptions, config: PolicyConfig, publish: Publish
) -> Any:
    from lacewing.controller.policy.kubernetes import KubernetesSource
    from lacewing.k8s.watch import KindWatch, connect_async

    client = connect_async(options.kubeconfig or ctx.kubeconfig, ctx.context)
    kinds = (*KubernetesSource.KINDS, *KubernetesSource.ROUTE_KINDS)
    watches: dict[str, Any] = {k: KindWatch(client, k) for k in kinds}
    source = KubernetesSource(watches, publish, config)

    async def run() -> None:
        try:
            await source.run()
        finally:
            await client.close()

    return run


def _local(
    options: PolicyOptions, ctx: GlobalOptions, config: PolicyConfig, publish: Publish
) -> Any:
    from lacewing.controller.destination.local import registry_path
    from lacewing.controller.policy.local import LocalSource

    path = options.registry_file or registry_path(options.cluster)
    return LocalSource(path, options.policy_file, publish, config).run


SOURCES: dict[str, SourceFactory] = {
    "kubernetes": _kubernetes,  # policy CRDs, Pods, Namespaces (list + watch)
    "local": _local,  # the local runtime's registry.json + --policy-file, polled by mtime
}


class _Servers:
    """The policy API and, optionally, the webhook, started and stopped as one."""

    def __init__(self, api: ControllerServer, webhook: ControllerServer | None) -> None:
        self.api, self.webhook = api, webhook

    @property
    def bound_port(self) -> int:
        return self.api.bound_port

    async def start(self) -> None:
        await self.api.start()
        if self.webhook is not None:
            try:
                await self.webhook.start()
            except BaseException:
                await self.api.stop()
                raise

    async def stop(self) -> None:
        if self.webhook is not None:
            await self.webhook.stop()
        await self.api.stop()


def _config(options: PolicyOptions) -> PolicyConfig:
    from lacewing.core.identity import IdentityParseError, validate_trust_domain
    from lacewing.core.policy import DEFAULT_POLICIES, PolicyError, parse_networks
    from lacewing.core.policy_index import PolicyConfig

    if options.default_policy not in DEFAULT_POLICIES:
        raise UsageError(
            f"--default-policy: {options.default_policy!r} is not a default policy",
            hint=f"use one of {', '.join(DEFAULT_POLICIES)}",
        )
    try:
        networks = parse_networks(options.cluster_networks)
        validate_trust_domain(options.trust_domain)
    except (PolicyError, IdentityParseError) as exc:
        raise UsageError(str(exc)) from None
    return PolicyConfig(options.default_policy, networks, options.trust_domain)


def run_policy(
    options: PolicyOptions,
    ctx: GlobalOptions,
    out: Output,
    *,
    stop: asyncio.Event | None = None,
) -> int:
    from lacewing.controller.policy.admission import Validator, ValidatorServer
    from lacewing.controller.policy.server import Hub, PolicyServer

    host, port = parse_listen_addr(options.listen_addr, "0.0.0.0:8090")
    admission = None
    if options.admission_addr:
        try:
            admission = parse_listen_addr(options.admission_addr, "0.0.0.0:9443")
        except UsageError as exc:
            raise UsageError(exc.message.replace("--listen-addr", "--admission-addr")) from None
    factory = SOURCES.get(options.source)
    if factory is None:
        raise UsageError(f"unknown source {options.source!r}; choose one of {', '.join(SOURCES)}")
    config = _config(options)
    from lacewing.core.identity import POLICY_SERVICE_ACCOUNT

    tls_source = serving_tls(options.tls_flags, POLICY_SERVICE_ACCOUNT, ctx.namespace)
    tls = None
    if admission is not None:
        from lacewing.controller.injector.server import TlsFiles

        tls = TlsFiles(options.tls_dir)
        try:
            tls.context()  # an unusable certificate is one line now, not failed handshakes later
        except CertificateError as exc:
            raise CertificateError(
                exc.message,
                hint="mount the lacewing-policy-validator-k8s-tls Secret there (--tls-dir)",
            ) from None

    async def serve() -> None:
        await serve_over(tls_source, "policy", out, stop, _serve)

    async def _serve(ssl_context: ssl.SSLContext | None) -> None:
        hub = Hub()
        api = PolicyServer(hub, host, port, ssl_context=ssl_context, heartbeat=options.heartbeat)
        webhook = None
        if admission is not None and tls is not None:
            webhook = ValidatorServer(Validator(lambda: hub.index), tls, *admission)
        scheme = "https (mTLS)" if ssl_context else "http"

        def banner(bound: int) -> str:
            line = f"policy ({options.source} source) listening on {scheme}://{host}:{bound}"
            if webhook is not None:
                line += f", validator on https://{webhook.host}:{webhook.bound_port}"
            return line

        await serve_until_signalled(
            _Servers(api, webhook),
            out,
            banner,
            name="policy",
            stop=stop,
            companion=factory(options, ctx, config, hub.publish),
            companion_name=f"policy-source-{options.source}",
        )

    asyncio.run(serve())
    return 0


@click.command("policy")
@click.option(
    "--source",
    type=click.Choice(list(SOURCES)),
    default="kubernetes",
    show_default=True,
    help="Where policy resources and pods come from.",
)
@click.option("--listen-addr", default="0.0.0.0:8090", show_default=True)
@click.option(
    "--admission-addr",
    default=None,
    help="Serve the policy-validator webhook here (HTTPS with --tls-dir), e.g. 0.0.0.0:9443.",
)
@click.option(
    "--tls-dir",
    type=click.Path(path_type=Path),
    default=PolicyOptions.tls_dir,
    show_default=True,
    help="Directory holding the webhook's tls.crt and tls.key.",
)
@click.option(
    "--default-policy",
    default="all-unauthenticated",
    show_default=True,
    help="The cluster's default inbound policy.",
)
@click.option("--cluster-networks", default=PolicyOptions.cluster_networks, show_default=True)
@click.option("--cluster", default="local", show_default=True, help="For --source local.")
@click.option(
    "--registry-file",
    type=click.Path(path_type=Path),
    default=None,
    help="For --source local (default /run/lacewing/local/<cluster>/registry.json).",
)
@click.option(
    "--policy-file",
    type=click.Path(path_type=Path),
    default=None,
    help="For --source local: Kubernetes YAML of policy resources and Namespaces.",
)
@click.option("--kubeconfig", "kubeconfig", default=None, help="For --source kubernetes.")
@click.option("--trust-domain", default="cluster.local", show_default=True)
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
    help="With --identity-addr: the service-account token proving the controller's identity.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log source, stream and webhook events.")
@click.pass_obj
def policy_command(
    g: GlobalOptions | None,
    source: str,
    listen_addr: str,
    admission_addr: str | None,
    tls_dir: Path,
    default_policy: str,
    cluster_networks: str,
    cluster: str,
    registry_file: Path | None,
    policy_file: Path | None,
    kubeconfig: str | None,
    trust_domain: str,
    issuer_dir: Path | None,
    trust_anchors_file: Path | None,
    identity_addr: str | None,
    identity_token_file: Path | None,
    verbose: bool,
) -> int:
    """Authorization policy: stream per-port policy (GET /v1/inbound) and validate resources."""
    from lacewing.cli.commands.controller import controller_log_level

    configure_logging(verbose, controller_log_level(os.environ))
    options = PolicyOptions(
        source=source,
        listen_addr=listen_addr,
        admission_addr=admission_addr,
        tls_dir=tls_dir,
        default_policy=default_policy,
        cluster_networks=cluster_networks,
        cluster=cluster,
        registry_file=registry_file,
        policy_file=policy_file,
        kubeconfig=kubeconfig,
        trust_domain=trust_domain,
        issuer_dir=issuer_dir,
        trust_anchors_file=trust_anchors_file,
        identity_addr=identity_addr,
        identity_token_file=identity_token_file,
    )
    return run_policy(options, g or GlobalOptions(), Output())
