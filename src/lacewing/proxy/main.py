"""Run the proxy process: configuration, logging, uvloop, serve until stopped.

`serve(env, err)` is what both `lacewing proxy` (the CLI command) and `python -m
lacewing.proxy` call. The second skips the CLI and click (about 2.5 MB of RSS per sidecar); it
prints a `LacewingError` as the CLI does (one line, one hint line) and exits with its code.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping
from typing import TextIO

from lacewing.proxy.config import load
from lacewing.proxy.server import ProxyServer

__all__ = ["serve"]


def _loop_factory() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def serve(env: Mapping[str, str], err: TextIO | None = None) -> int:
    """Load the configuration from `env`, then run the proxy until it is told to stop."""
    config = load(env)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=err or sys.stderr,
    )

    async def main() -> None:
        server = ProxyServer(config)
        server.install_signal_handlers()
        await server.run()

    with asyncio.Runner(loop_factory=_loop_factory) as runner:
        runner.run(main())
    return 0
