"""`lacewing viz tap` and `viz top`: live requests from the proxies' tap servers.

`tap RESOURCE` (deploy/NAME or pod/NAME, `-n NS`) opens a tap on the proxy of every meshed
pod of RESOURCE (`lacewing.viz.tapclient`: mutual TLS to port 4190) with the filter of
`--to`, `--path`, `--method`, `--authority`, `--max-rps` (`lacewing.viz.tap.tap_filter`),
and prints each ended request as it comes (`-o table` / `wide`: one `rsp` line, `-o json`:
one JSON object a line) until Ctrl-C or `--duration` seconds. `top RESOURCE` aggregates the
same stream by path (`lacewing.viz.tap.Top`): on a terminal the table is redrawn every
second; otherwise (or at the end) it is printed once.

Where: a local cluster (`--local [NAME]` or `$LACEWING_LOCAL_CLUSTER`): the CLI taps the
proxies itself. Otherwise Kubernetes: the CLI asks the viz install's tap component
(`lacewing.viz.taprelay`) through the API server's pod proxy and reads its event stream.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import UsageError

if TYPE_CHECKING:
    from lacewing.viz.taprelay import TapQuery

__all__ = ["TapOptions", "run_tap", "run_top", "tap_command", "top_command"]


@dataclass(frozen=True)
class TapOptions:
    query: TapQuery  # what to tap: the relay's and the dashboard's query too
    output: str = "table"
    local: str | None = None


def _stream(options: TapOptions, ctx: GlobalOptions, out: Output) -> Iterator[dict[str, Any]]:
    from lacewing.cli.commands.viz_install import connect
    from lacewing.local.control import CLUSTER_ENV
    from lacewing.viz.tap import OUTPUTS
    from lacewing.viz.tapstream import tap_events

    if options.output not in OUTPUTS:
        raise UsageError(f"invalid -o {options.output!r}", hint="use table, wide or json")
    query = options.query

    def opened(pods: list[str], through: str | None) -> None:
        via = f" through {through}" if through else ""
        out.warn(f"tapping {len(pods)} pod(s) of {query.resource} in {query.namespace}{via}")
        out.err.flush()

    local = options.local or os.environ.get(CLUSTER_ENV)
    return tap_events(query, local, lambda: connect(ctx), opened)


def run_tap(options: TapOptions, ctx: GlobalOptions, out: Output) -> int:
    from lacewing.viz.tap import tap_line

    events = _stream(options, ctx, out)
    try:
        for event in events:
            if options.output == "json":
                out.line(json.dumps(event, sort_keys=True))
            else:
                out.line(tap_line(event, wide=options.output == "wide"))
            out.out.flush()
    except KeyboardInterrupt:
        pass
    return 0


def run_top(options: TapOptions, ctx: GlobalOptions, out: Output) -> int:
    from lacewing.viz.tap import Top

    top = Top()
    live = out.is_terminal and options.output != "json"
    events = _stream(options, ctx, out)
    drawn = time.monotonic()
    try:
        for event in events:
            top.add(event)
            if live and time.monotonic() - drawn >= 1.0:
                drawn = time.monotonic()
                out.out.write("\x1b[H\x1b[2J" + "\n".join(top.render()) + "\n")
                out.out.flush()
    except KeyboardInterrupt:
        pass
    if options.output == "json":
        out.line(json.dumps(top.ranked()))
    else:
        if live:
            out.out.write("\x1b[H\x1b[2J")
        for line in top.render():
            out.line(line)
    return 0


def _options(f: Any) -> Any:
    for option in reversed([
        click.argument("resource"),
        click.option("-n", "--namespace", default="default", show_default=True,
                     help="Namespace of RESOURCE."),
        click.option("--to", default=None, help="Only requests to this resource (KIND/NAME)."),
        click.option("--to-namespace", default=None, help="Namespace of --to [default: -n]."),
        click.option("--path", default=None, help="Only requests whose path starts with this."),
        click.option("--method", default=None, help="Only requests with this HTTP method."),
        click.option("--authority", default=None, help="Only requests to this authority."),
        click.option("--max-rps", type=float, default=None,
                     help="At most this many events per second per proxy."),
        click.option("-o", "--output", default="table", show_default=True,
                     help="table, wide or json."),
        click.option("--duration", default=None,
                     help="Stop after this long (10s, 1m, or seconds) [default: until Ctrl-C]."),
        click.option("--local", "local", default=None, help="The local cluster's name."),
    ]):  # fmt: skip
        f = option(f)
    return f


def _build(output: str = "table", local: str | None = None, **kw: Any) -> TapOptions:
    from lacewing.viz.scrape import parse_window
    from lacewing.viz.taprelay import TapQuery

    if kw.get("duration") is not None:  # the same durations as `demo --duration`
        kw["duration"] = parse_window(kw["duration"], "--duration")
    return TapOptions(TapQuery(**kw), output, local)


@click.command("tap")
@_options
@click.pass_obj
def tap_command(g: GlobalOptions, /, **kw: Any) -> int:
    """Live requests through the proxies of a resource: `lacewing viz tap deploy/web`."""
    return run_tap(_build(**kw), g, Output())


@click.command("top")
@_options
@click.pass_obj
def top_command(g: GlobalOptions, /, **kw: Any) -> int:
    """The most-hit paths of a resource, live from tap: `lacewing viz top deploy/web`."""
    return run_top(_build(**kw), g, Output())
