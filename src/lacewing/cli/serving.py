"""Running a control-plane component in the foreground: listen address, signals, drain.

`lacewing controller identity|destination|proxy-injector` all log the same way
(`configure_logging`), read `--listen-addr` the same way, and end the same way, here:
`serve_until_signalled` installs SIGTERM/SIGINT handlers that set a stop event, starts the
server, prints the one "listening on" line (flushed, so a supervisor reading stdout sees it
at once), then waits for the event, or for an optional companion task (the destination's
endpoint source) to end. On the way out it removes the handlers, cancels and awaits the
companion and the waiter, drains the server (its own staged stop), and re-raises the
companion's failure if it had one, so that a dead source is a non-zero exit, not a server
that silently serves stale endpoints.

With `$LACEWING_CONTROLLER_ADMIN_ADDR` set, an admin server (`lacewing.controller.admin`:
plaintext /metrics, /ready, /live) starts after the component's server and stops before it;
it reports the `ControllerServer`s found in `server` (itself, or its attributes, as for the
policy controller's API + webhook pair).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from lacewing.cli.context import Output
from lacewing.errors import UsageError

__all__ = ["Serving", "configure_logging", "parse_listen_addr", "serve_until_signalled"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Serving(Protocol):
    @property
    def bound_port(self) -> int: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def configure_logging(verbose: bool, default: int = logging.WARNING) -> None:
    """Timestamped log lines on stderr: INFO with `-v`, else `default`."""
    logging.basicConfig(
        level=logging.INFO if verbose else default,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def parse_listen_addr(text: str, example: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` too; an empty host is 0.0.0.0) for `--listen-addr`."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen-addr: {text!r} is not HOST:PORT", hint=f"for example {example}")
    return host.strip("[]") or "0.0.0.0", int(port)


async def serve_until_signalled(
    server: Serving,
    out: Output,
    banner: Callable[[int], str],
    *,
    name: str,
    stop: asyncio.Event | None = None,
    companion: Callable[[], Coroutine[Any, Any, None]] | None = None,
    companion_name: str = "",
) -> None:
    """Serve until SIGTERM, SIGINT, `stop` is set or `companion` ends; then drain.

    `banner(bound_port)` is the line printed once listening; `name` names the tasks.
    """
    stopping = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stopping.set)
    tasks: list[asyncio.Task[Any]] = []
    admin = _admin_server(server)
    try:
        await server.start()
        if admin is not None:
            await admin.start()
        if companion is not None:
            tasks.append(asyncio.create_task(companion(), name=companion_name or name))
        out.line(banner(server.bound_port))
        out.out.flush()
        tasks.append(asyncio.create_task(stopping.wait(), name=f"{name}-stop"))
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if admin is not None:
            await admin.stop()
        await server.stop()
    if companion is not None:
        side = tasks[0]
        failure = None if side.cancelled() else side.exception()
        if failure is not None:
            raise failure


def admin_addr(env: Mapping[str, str]) -> tuple[str, int] | None:
    """`$LACEWING_CONTROLLER_ADMIN_ADDR` as (host, port); None when unset."""
    from lacewing.controller.admin import ADMIN_ADDR_ENV

    addr = env.get(ADMIN_ADDR_ENV)
    if not addr:
        return None
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"${ADMIN_ADDR_ENV}: {addr!r} is not HOST:PORT", hint="e.g. 0.0.0.0:9990")
    return host.strip("[]") or "0.0.0.0", int(port)


def _admin_server(server: Serving) -> Any:
    from lacewing.controller.admin import AdminServer
    from lacewing.controller.https import ControllerServer

    addr = admin_addr(os.environ)
    if addr is None:
        return None
    found = [server, *vars(server).values()]
    servers = [s for s in found if isinstance(s, ControllerServer)]
    return AdminServer(addr[0], addr[1], servers)
