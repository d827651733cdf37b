"""`lacewing proxy-init`: install the pod's nat rules that send its TCP through the proxy.

Flags are parsed into a `ProxyInitOptions` (bad values raise `UsageError`, one line each),
the rule set is built as data by `lacewing.proxy.init.rules`, and the runner applies it
through the host's iptables. `--dry-run` prints the iptables commands instead of running them
(a `#` line first says which backend and why); `--clean` removes the chains and the jumps.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.proxy.init.rules import (
    DEFAULT_INBOUND_PROXY_PORT,
    DEFAULT_OUTBOUND_PROXY_PORT,
    DEFAULT_PROXY_UID,
    ProxyInitOptions,
    build_ruleset,
    parse_port_list,
    parse_subnet_list,
)
from lacewing.proxy.init.runner import Host, IptablesMode, execute, parse_mode


@dataclass(frozen=True)
class ProxyInitCommandOptions:
    rules: ProxyInitOptions = field(default_factory=ProxyInitOptions)
    iptables_mode: IptablesMode | None = None
    dry_run: bool = False
    clean: bool = False


def run(
    options: ProxyInitCommandOptions,
    ctx: GlobalOptions,
    out: Output,
    host: Host | None = None,
) -> int:
    ruleset = build_ruleset(options.rules)
    outcome = execute(
        ruleset,
        mode=options.iptables_mode,
        clean=options.clean,
        dry_run=options.dry_run,
        host=host,
        warn=out.warn,
    )
    backend = outcome.backend
    if options.dry_run:
        out.line(f"# iptables mode: {backend.mode} ({backend.reason})")
        for command in outcome.commands:
            out.line(shlex.join(outcome.argv(command)))
        if not outcome.commands:
            out.line("# nothing to do: the nat table is already as wanted")
        return 0
    if options.clean:
        if outcome.commands:
            out.line(f"proxy-init: removed the proxy's nat rules ({backend.binary})")
        else:
            out.line(f"proxy-init: no proxy nat rules to remove ({backend.binary})")
        return 0
    counts = ", ".join(f"{chain}: {len(rules)} rules" for chain, rules in ruleset.chains.items())
    if outcome.commands:
        out.line(f"proxy-init: installed the proxy's nat rules with {backend.binary} ({counts})")
    else:
        out.line(f"proxy-init: the proxy's nat rules are already in place ({backend.binary})")
    return 0


@click.command("proxy-init")
@click.option(
    "--incoming-proxy-port",
    type=int,
    default=DEFAULT_INBOUND_PROXY_PORT,
    show_default=True,
    help="Port the proxy accepts redirected inbound connections on.",
)
@click.option(
    "--outgoing-proxy-port",
    type=int,
    default=DEFAULT_OUTBOUND_PROXY_PORT,
    show_default=True,
    help="Port the proxy accepts redirected outbound connections on.",
)
@click.option(
    "--proxy-uid",
    type=int,
    default=DEFAULT_PROXY_UID,
    show_default=True,
    help="User id the proxy runs as; its own connections are not redirected.",
)
@click.option(
    "--inbound-ports-to-ignore",
    default="",
    help="Ports (and low-high ranges) that inbound traffic reaches directly; 4190,4191 always.",
)
@click.option(
    "--outbound-ports-to-ignore",
    default="",
    help="Destination ports (and ranges) that outbound traffic reaches directly.",
)
@click.option(
    "--subnets-to-ignore",
    default="",
    help="CIDRs whose inbound (by source) and outbound (by destination) skip the proxy.",
)
@click.option(
    "--iptables-mode",
    type=click.Choice(["nft", "legacy"]),
    default=None,
    help="iptables backend to use. [default: the one the host uses]",
)
@click.option("--dry-run", is_flag=True, help="Print the iptables commands; change nothing.")
@click.option("--clean", is_flag=True, help="Remove the proxy's nat rules and chains.")
@click.pass_obj
def command(
    g: GlobalOptions,
    incoming_proxy_port: int,
    outgoing_proxy_port: int,
    proxy_uid: int,
    inbound_ports_to_ignore: str,
    outbound_ports_to_ignore: str,
    subnets_to_ignore: str,
    iptables_mode: str | None,
    dry_run: bool,
    clean: bool,
) -> int:
    """Install the pod's iptables rules that send its TCP through the lacewing proxy."""
    rules = ProxyInitOptions(
        incoming_proxy_port=incoming_proxy_port,
        outgoing_proxy_port=outgoing_proxy_port,
        proxy_uid=proxy_uid,
        inbound_ports_to_ignore=parse_port_list(
            inbound_ports_to_ignore, "--inbound-ports-to-ignore"
        ),
        outbound_ports_to_ignore=parse_port_list(
            outbound_ports_to_ignore, "--outbound-ports-to-ignore"
        ),
        subnets_to_ignore=parse_subnet_list(subnets_to_ignore),
    )
    options = ProxyInitCommandOptions(
        rules=rules, iptables_mode=parse_mode(iptables_mode), dry_run=dry_run, clean=clean
    )
    return run(options, g, Output())
