"""The `lacewing` console script: `lacewing proxy` starts the proxy without importing the CLI.

Every sidecar runs `lacewing proxy` with no other argument (its configuration is all in
`LACEWING_PROXY_*` variables), for as long as its pod lives. Going through click for that
costs each sidecar about 1.7 MB of RSS (1.6 MB of it private: click's modules and the
command table), so exactly that command line goes straight to `lacewing.proxy.__main__`,
which prints a `LacewingError` the way the CLI does. Anything else, `lacewing proxy --help`
included, is the CLI (`cli.main.main`).
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    if sys.argv[1:] == ["proxy"]:
        from lacewing.proxy.__main__ import run_proxy

        sys.exit(run_proxy())
    from lacewing.cli.main import main as cli_main

    cli_main()
