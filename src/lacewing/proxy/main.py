"""Run the proxy process: configuration, logging, uvloop, serve until stopped.

`serve(env, err)` is what both `lacewing proxy` (the CLI command) and `python -m
lacewing.proxy` call; the second skips the CLI and click (about 2.5 MB of RSS per sidecar) and
prints a `LacewingError` as the CLI does (one line, one hint line). When `LACEWING_IDENTITY_*`
is configured the proxy is meshed (`lacewing.proxy.identity.sidecar.MeshedProxyServer`:
certificate first, then ready, mTLS on both sides); otherwise it is the plaintext proxy, and
the identity modules are never imported. A meshed proxy forks the child that makes its key
and CSR (`identity.keygen.start_keygen`) first thing, while it is still single-threaded and
before the event loop exists, so `cryptography` is loaded only in that short-lived child and
its work overlaps the proxy's own start-up. The first log line names the build (hot path
compiled with mypyc or pure Python: `lacewing.proxy.build`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping
from typing import TextIO

from lacewing.proxy.build import current as current_build
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
    identity = key = None
    if any(name.startswith("LACEWING_IDENTITY_") for name in env):
        from lacewing.proxy.identity.keygen import start_keygen
        from lacewing.proxy.identity.sidecar import load_identity_config

        identity = load_identity_config(env)
        if identity is not None:
            key = start_keygen(identity.identity)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=err or sys.stderr,
    )
    build = current_build()  # a slower pure-Python install is a warning, never silent
    level = logging.INFO if build.name == "mypyc" else logging.WARNING
    logging.getLogger(__name__).log(level, "proxy build: %s", build.describe())

    async def main() -> None:
        server: ProxyServer
        if identity is None:
            server = ProxyServer(config)
        else:
            from lacewing.proxy.identity.sidecar import MeshedProxyServer

            server = MeshedProxyServer(config, identity, key=key)
        server.install_signal_handlers()
        await server.run()

    with asyncio.Runner(loop_factory=_loop_factory) as runner:
        runner.run(main())
    return 0
