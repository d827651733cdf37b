"""`lacewing check [--pre]`: is the cluster ready for lacewing, is the control plane healthy?

The command only wires things together: it builds the `Facts` context with the real adapters
(`Cluster.connect`, the install renderer, the version fetcher), picks the categories from
`lacewing.healthcheck.catalog`, runs them with `run_checks` and renders the report. Human
output streams as checks finish (with a spinner on a terminal); `-o json` is printed at the end.
The exit status is 0 only when no check failed as an error (warnings do not count).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from lacewing import __version__
from lacewing.cli.context import GlobalOptions, Output
from lacewing.core import durations
from lacewing.errors import UsageError
from lacewing.healthcheck import versions
from lacewing.healthcheck.catalog import categories
from lacewing.healthcheck.facts import CheckOptions, ClusterPort, Facts
from lacewing.healthcheck.render import HumanRenderer, to_json
from lacewing.healthcheck.runner import run_checks

__all__ = ["CheckCommandOptions", "command", "parse_duration", "run"]

OUTPUTS = ("basic", "short", "json")
_WAIT_SYNTAX = durations.DurationSyntax(bare_seconds=True)


@dataclass(frozen=True)
class CheckCommandOptions:
    pre: bool = False
    proxy: bool = False
    data_plane_namespace: str | None = None
    output: str = "basic"
    wait: float = 300.0
    skip_version_check: bool = False
    retry_interval: float = 1.0


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (`5m`, `1m30s`, `300s`, `0`); a bare number is seconds."""
    try:
        return durations.parse_duration(text, _WAIT_SYNTAX)
    except durations.DurationError:
        raise UsageError(
            f"invalid duration {text!r} for --wait", hint="use a duration like 5m, 90s or 0"
        ) from None


def _connect(kubeconfig: str | None, context: str | None) -> ClusterPort:
    from lacewing.k8s.cluster import Cluster

    cluster: ClusterPort = Cluster.connect(kubeconfig, context)
    return cluster


def _render(options: CheckOptions) -> list[dict[str, Any]]:
    from lacewing.healthcheck.manifests import render_for_checks

    return render_for_checks(options.namespace)


def run(
    options: CheckCommandOptions,
    ctx: GlobalOptions,
    out: Output,
    *,
    connect: Callable[[str | None, str | None], ClusterPort] = _connect,
    render: Callable[[CheckOptions], list[dict[str, Any]]] = _render,
    fetch_latest: Callable[[str], str] = versions.fetch_latest,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    if options.output not in OUTPUTS:
        raise UsageError(f"invalid output {options.output!r}", hint=f"use one of {OUTPUTS}")
    check_options = CheckOptions(
        namespace=ctx.namespace,
        kubeconfig=ctx.kubeconfig,
        context=ctx.context,
        cli_version=__version__,
        version_url=versions.version_url(),
    )
    facts = Facts(check_options, connect=connect, render=render, fetch_latest=fetch_latest, now=now)
    skip = options.skip_version_check or versions.skip_requested()
    if options.pre and options.proxy:
        raise UsageError("--pre and --proxy cannot be combined", hint="run one, then the other")
    chosen = categories(
        pre=options.pre,
        skip_version_check=skip,
        proxy=options.proxy,
        data_plane_namespace=options.data_plane_namespace,
    )

    def expand_hint(hint: str) -> str:
        return hint.replace("{namespace}", ctx.namespace)

    human = None
    if options.output != "json":
        human = HumanRenderer(
            out.out,
            short=options.output == "short",
            terminal=out.is_terminal,
            progress=out.err,  # what --wait is waiting for, when stdout is not a terminal
        )
    report = run_checks(
        chosen,
        facts,
        wait=options.wait,
        interval=options.retry_interval,
        clock=clock,
        sleep=sleep,
        observer=human,
        expand_hint=expand_hint,
    )
    if human is None:
        out.line(to_json(report))
    else:
        human.finish(report)
    return 0 if report.success else 1


@click.command("check")
@click.option("--pre", is_flag=True, help="Check whether the cluster is ready for lacewing.")
@click.option("--proxy", is_flag=True, help="Also check the data plane (the meshed pods' proxies).")
@click.option(
    "-n",
    "--namespace",
    "data_plane_namespace",
    default=None,
    help="With --proxy: the namespace of the data plane to check (default: all namespaces).",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(OUTPUTS),
    default="basic",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--wait",
    default="5m",
    show_default=True,
    help="Retry checks that may still pass (pods becoming ready) for this long; 0 disables.",
)
@click.option(
    "--skip-version-check",
    is_flag=True,
    help="Do not look up the latest lacewing version (also: LACEWING_SKIP_VERSION_CHECK=1).",
)
@click.pass_obj
def command(
    g: GlobalOptions,
    pre: bool,
    proxy: bool,
    data_plane_namespace: str | None,
    output: str,
    wait: str,
    skip_version_check: bool,
) -> int:
    """Check that the cluster is ready for lacewing (--pre) or that lacewing is healthy."""
    options = CheckCommandOptions(
        pre=pre,
        proxy=proxy,
        data_plane_namespace=data_plane_namespace,
        output=output,
        wait=parse_duration(wait),
        skip_version_check=skip_version_check,
    )
    return run(options, g, Output())
