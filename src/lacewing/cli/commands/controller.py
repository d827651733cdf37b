"""`lacewing controller <component>`: run one control-plane component in this process.

Each component is a subcommand of the `controller` group, listed in `COMPONENTS` and imported
only when it runs (identity here; destination from `controller_destination`, proxy-injector
from `controller_injector`; policy joins the table when it exists). A subcommand parses its
flags into a frozen options dataclass and calls its `run_*(options, ctx, out)`, which checks
everything it can before listening (issuer files readable and chaining to the trust anchors,
validator configured) so that a mistake is one line, not a crash loop. It serves until
SIGTERM or SIGINT, then drains.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.cli.lazy import LazyGroup
from lacewing.cli.serving import configure_logging, parse_listen_addr, serve_until_signalled
from lacewing.core import durations
from lacewing.errors import UsageError

if TYPE_CHECKING:
    from lacewing.core.identity import Validator

__all__ = [
    "CONTROLLER_ENV",
    "IdentityOptions",
    "command",
    "controller_log_level",
    "parse_duration",
    "run_identity",
]

_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
               "warning": logging.WARNING, "error": logging.ERROR}  # fmt: skip
_FLAG_SYNTAX = durations.DurationSyntax(units=("d", "h", "m", "s", "ms"))


CONTROLLER_ENV = "LACEWING_LOG_LEVEL"
"""The one variable every `lacewing controller` component reads (install renders it)."""


def controller_log_level(env: Mapping[str, str]) -> int:
    """`LACEWING_LOG_LEVEL` (debug, info, warn, error) as a logging level; default warning."""
    return _LOG_LEVELS.get(env.get(CONTROLLER_ENV, "").lower(), logging.WARNING)


def parse_duration(text: str, flag: str) -> timedelta:
    """Go-style durations as Linkerd's flags take them: 24h, 20s, 1h30m, 500ms (and 1d)."""
    try:
        return timedelta(seconds=durations.parse_duration(text.replace(" ", ""), _FLAG_SYNTAX))
    except durations.DurationError:
        raise UsageError(
            f"{flag}: {text!r} is not a duration", hint="use forms like 24h, 20s, 1h30m"
        ) from None


def _kubernetes_validator(options: IdentityOptions, ctx: GlobalOptions) -> Validator:
    from lacewing.k8s.cluster import Cluster
    from lacewing.k8s.tokenreview import KubernetesValidator

    return KubernetesValidator(Cluster.connect(options.kubeconfig or ctx.kubeconfig, ctx.context))


def _local_validator(options: IdentityOptions, ctx: GlobalOptions) -> Validator:
    from lacewing.controller.identity.validators import local_validator

    return local_validator(options.local_token_key_file)


@dataclass(frozen=True)
class IdentityOptions:
    trust_domain: str = "cluster.local"
    issuer_dir: Path = Path("/var/run/lacewing/identity/issuer")
    trust_anchors_file: Path = Path("/var/run/lacewing/identity/trust-anchors/ca-bundle.crt")
    lifetime: timedelta = timedelta(hours=24)
    clock_skew: timedelta = timedelta(seconds=20)
    listen_addr: str = "0.0.0.0:8080"
    validator: str = "kubernetes"
    kubeconfig: str | None = None
    local_token_key_file: Path | None = None


VALIDATORS: dict[str, Callable[[IdentityOptions, GlobalOptions], Validator]] = {
    "kubernetes": _kubernetes_validator,  # TokenReview, audience identity.lacewing.io
    "local": _local_validator,  # HMAC tokens minted by the local runtime
}


def run_identity(
    options: IdentityOptions, ctx: GlobalOptions, out: Output, *, stop: asyncio.Event | None = None
) -> int:
    from lacewing.controller.identity.issuer_files import IssuerFiles, load_trust_anchors
    from lacewing.controller.identity.server import IdentityServer
    from lacewing.controller.identity.service import IdentityService
    from lacewing.core.identity import IdentityParseError, identity_service_name
    from lacewing.tls.bundle import TrustBundle

    try:
        server_identity = identity_service_name(ctx.namespace, options.trust_domain)
    except IdentityParseError as exc:
        raise UsageError(f"--trust-domain / namespace: {exc}") from None
    if options.lifetime <= timedelta(0) or options.clock_skew < timedelta(0):
        raise UsageError("the issuance lifetime must be positive and the clock skew not negative")
    host, port = parse_listen_addr(options.listen_addr, "0.0.0.0:8080")
    try:
        anchors_pem = options.trust_anchors_file.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read --trust-anchors-file {options.trust_anchors_file}: {exc.strerror}"
        ) from None
    anchors = load_trust_anchors(anchors_pem, source=str(options.trust_anchors_file))
    # the anchors file is watched: a rotated bundle is used without a restart
    bundle = TrustBundle(anchors_pem.decode(), options.trust_anchors_file)
    issuer = IssuerFiles(options.issuer_dir, anchors, bundle)
    issuer.current()  # refuse to start without a usable issuer: one clear line
    factory = VALIDATORS.get(options.validator)
    if factory is None:
        raise UsageError(
            f"unknown validator {options.validator!r}; choose one of {', '.join(VALIDATORS)}"
        )
    validator = factory(options, ctx)
    service = IdentityService(
        trust_domain=options.trust_domain,
        validator=validator,
        issuer=issuer.current,
        lifetime=options.lifetime,
        clock_skew=options.clock_skew,
    )

    async def serve() -> None:
        await serve_until_signalled(
            IdentityServer(service, server_identity, host, port),
            out,
            lambda bound: (
                f"identity service for {options.trust_domain} listening on {host}:{bound}"
            ),
            name="identity",
            stop=stop,
        )

    asyncio.run(serve())
    return 0


COMPONENTS: dict[str, str] = {
    "identity": "lacewing.cli.commands.controller:identity_command",
    "destination": "lacewing.cli.commands.controller_destination:destination_command",
    "proxy-injector": "lacewing.cli.commands.controller_injector:proxy_injector_command",
    "policy": "lacewing.cli.commands.controller_policy:policy_command",
}
"""Subcommands of `lacewing controller`: name -> "module:attribute", imported on first use."""


@click.group("controller", cls=LazyGroup, table=COMPONENTS)
def command() -> None:
    """Run a control-plane component."""


@click.command("identity")
@click.option("--trust-domain", default="cluster.local", show_default=True)
@click.option(
    "--issuer-dir",
    type=click.Path(path_type=Path),
    default=IdentityOptions.issuer_dir,
    show_default=True,
    help="Directory holding the issuer's tls.crt and tls.key.",
)
@click.option(
    "--trust-anchors-file",
    type=click.Path(path_type=Path),
    default=IdentityOptions.trust_anchors_file,
    show_default=True,
)
@click.option(
    "--identity-issuance-lifetime",
    "lifetime",
    default="24h",
    show_default=True,
    envvar="LACEWING_IDENTITY_ISSUANCE_LIFETIME",
)
@click.option("--clock-skew-allowance", "clock_skew", default="20s", show_default=True)
@click.option("--listen-addr", default="0.0.0.0:8080", show_default=True)
@click.option(
    "--validator",
    type=click.Choice(list(VALIDATORS)),
    default="kubernetes",
    show_default=True,
    help="How tokens are checked.",
)
@click.option("--kubeconfig", "kubeconfig", default=None, help="For --validator kubernetes.")
@click.option(
    "--local-token-key-file",
    type=click.Path(path_type=Path),
    default=None,
    help="For --validator local: the key the local runtime mints tokens with.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Log each issued and refused request (or set LACEWING_LOG_LEVEL=info).",
)
@click.pass_obj
def identity_command(
    g: GlobalOptions,
    trust_domain: str,
    issuer_dir: Path,
    trust_anchors_file: Path,
    lifetime: str,
    clock_skew: str,
    listen_addr: str,
    validator: str,
    kubeconfig: str | None,
    local_token_key_file: Path | None,
    verbose: bool,
) -> int:
    """The identity CA: certifies proxies' service accounts (POST /v1/certify)."""
    configure_logging(verbose, controller_log_level(os.environ))
    options = IdentityOptions(
        trust_domain=trust_domain,
        issuer_dir=issuer_dir,
        trust_anchors_file=trust_anchors_file,
        lifetime=parse_duration(lifetime, "--identity-issuance-lifetime"),
        clock_skew=parse_duration(clock_skew, "--clock-skew-allowance"),
        listen_addr=listen_addr,
        validator=validator,
        kubeconfig=kubeconfig,
        local_token_key_file=local_token_key_file,
    )
    return run_identity(options, g or GlobalOptions(), Output())
