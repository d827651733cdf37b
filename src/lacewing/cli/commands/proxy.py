"""`lacewing proxy`: run the sidecar proxy until SIGTERM, SIGINT or POST /shutdown.

All configuration comes from `LACEWING_PROXY_*` environment variables (docs/proxy-config.md);
a bad value is a `ConfigError` naming the variable, which the entry point prints on one line
and exits 2. The work is `lacewing.proxy.main.serve`, which `python -m lacewing.proxy` also
runs without the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import click

from lacewing.cli.context import GlobalOptions, Output


@dataclass(frozen=True)
class ProxyOptions:
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def run(options: ProxyOptions, ctx: GlobalOptions, out: Output) -> int:
    from lacewing.proxy.main import serve

    return serve(options.env, out.err)


@click.command("proxy")
@click.pass_obj
def command(g: GlobalOptions) -> int:
    """Run the sidecar proxy (configured by LACEWING_PROXY_* environment variables)."""
    return run(ProxyOptions(), g, Output())
