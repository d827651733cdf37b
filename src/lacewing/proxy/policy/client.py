"""The proxy's client of the policy API: one stream per inbound port, resilient.

`PolicyClient.watch(port)` returns the `PortWatch` of that port, creating it (and its
streaming task, named `policy:<port>`) on first use; `policy(port)` is the policy to enforce
right now, which is what `gate.InboundGate` is given. A stream task:

1. connects to the policy controller (TLS when an `ssl_context` is given: a context, or a
   function returning the current one, e.g. the proxy's renewed mTLS client context, None
   while there is no certificate yet), sends
   `GET /v1/inbound?namespace=NS&pod=POD&port=N` and reads JSON lines;
2. each `POLICY` line replaces the port's policy whole (`core.policy.policy_from_dict`); a
   `NOT_FOUND` line (the controller does not know this pod yet) changes nothing;
3. when the stream breaks, the controller goes away, or nothing (not even a heartbeat)
   arrives for `read_timeout` seconds, it keeps the last policy, sleeps with exponential
   backoff (0.1 s doubling to 5 s, injectable `sleep`) and reconnects. A 400 is final.

A port's first connection should not be decided before its stream had a chance to answer:
`await wait(port, timeout)` (what the accept path does, `LACEWING_PROXY_POLICY_WAIT`) waits
until the first `POLICY` arrives, the controller says `NOT_FOUND`, or the first connection
attempt fails, at most `timeout` seconds, and once per port: after a wait that timed out the
port counts as settled; `settled(port, timeout)` is the same returning the policy;
`prefetch(ports)` starts the streams of the pod's known ports at start-up
(`LACEWING_PROXY_INBOUND_PORTS`) so that they are usually settled before the first client
arrives; a stream that has no client certificate yet polls for it (every 20 ms) without
counting that as an attempt, so the port does not settle on the default meanwhile.

What `policy(port)` returns:
- the last policy the controller sent for the port, even while it is unreachable;
- before any answer (a new proxy whose controller is down): `default(port)`, the proxy's
  configured default policy (`core.policy.default_port_policy` of the install's
  `--default-policy` and cluster networks, given by the caller). With `deny` that has no
  authorization at all: the port fails closed until the controller answers.

`close()` cancels every task it owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote

from lacewing.core.policy import PolicyError, PortPolicy, policy_from_dict, policy_to_dict
from lacewing.proxy.transport.stream import get_lines, within

if TYPE_CHECKING:
    from lacewing.proxy.metrics.control import ControlStats

__all__ = ["PolicyClient", "PortWatch"]

NO_CERTIFICATE_POLL = 0.02  # seconds between looks for the proxy's first certificate

log = logging.getLogger(__name__)


class PortWatch:
    """What is known about one inbound port; updated in place by its stream."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.policy: PortPolicy | None = None  # None until the controller's first POLICY
        self.connected = False
        self.updates = 0
        self.not_found = False
        self._changed = asyncio.Event()
        self._settled = asyncio.Event()

    @property
    def is_settled(self) -> bool:
        """True once the controller answered or the first attempt to reach it failed."""
        return self._settled.is_set()

    async def settled(self, timeout: float) -> bool:
        """Wait until settled; False on timeout."""
        with contextlib.suppress(TimeoutError):
            await within(self._settled.wait(), timeout)
        return self._settled.is_set()

    async def changed(self, timeout: float) -> bool:
        """Wait for the next update; False on timeout."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await within(event.wait(), timeout)
        return event.is_set()

    def _set(self, policy: PortPolicy) -> None:
        self.policy, self.not_found = policy, False
        self.updates += 1
        self._settled.set()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


class PolicyClient:
    control: ControlStats | None = None  # its `control_*` metrics (set by the proxy)

    def __init__(
        self,
        host: str,
        port: int,
        *,
        namespace: str,
        pod: str,
        default: Callable[[int], PortPolicy],
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext | None] | None = None,
        server_hostname: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        read_timeout: float = 30.0,
        backoff_first: float = 0.1,
        backoff_cap: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self.namespace, self.pod, self.default = namespace, pod, default
        self.ssl_context, self.server_hostname = ssl_context, server_hostname
        self._sleep = sleep
        self.read_timeout = read_timeout
        self.backoff_first, self.backoff_cap = backoff_first, backoff_cap
        self._watches: dict[int, tuple[PortWatch, asyncio.Task[None]]] = {}
        self.connects = 0

    def watch(self, port: int) -> PortWatch:
        entry = self._watches.get(port)
        if entry is None:
            watch = PortWatch(port)
            task = asyncio.create_task(self._follow(watch), name=f"policy:{port}")
            self._watches[port] = (watch, task)
            return watch
        return entry[0]

    def prefetch(self, ports: Iterable[int]) -> None:
        """Start the streams of these ports now (the pod's container ports)."""
        for port in ports:
            self.watch(port)

    async def settled(self, port: int, timeout: float) -> PortPolicy:
        """The policy of `port` once its stream settled (at most `timeout` seconds)."""
        watch = self.watch(port)
        if not watch.is_settled:
            await watch.settled(timeout)
        return self.policy(port)

    def answered(self, port: int) -> bool:
        """True once the stream of `port` settled (starting it if needed)."""
        return self.watch(port).is_settled

    async def wait(self, port: int, timeout: float) -> bool:
        """Wait until `port` settled, at most `timeout` seconds; False on timeout, after which
        the port counts as settled (a controller that hangs delays one wait, not each)."""
        watch = self.watch(port)
        if watch.is_settled or await watch.settled(timeout):
            return True
        watch._settled.set()
        return False

    def snapshot(self) -> dict[str, object]:
        """What the admin server's `/policy` shows: each asked-for port's policy now."""
        ports = []
        for port, (watch, _) in sorted(self._watches.items()):
            ports.append(
                {
                    "port": port,
                    "source": "controller" if watch.policy is not None else "default",
                    "connected": watch.connected,
                    "updates": watch.updates,
                    "notFound": watch.not_found,
                    "policy": policy_to_dict(self.policy(port)),
                }
            )
        return {"controller": f"{self.host}:{self.port}", "ports": ports}

    def policy(self, port: int) -> PortPolicy:
        """The policy to enforce on `port` now (see the module docstring)."""
        known = self.watch(port).policy
        return known if known is not None else self.default(port)

    async def close(self) -> None:
        tasks = [t for _, t in self._watches.values()]
        self._watches.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, watch: PortWatch) -> None:
        delay = self.backoff_first
        while True:
            if callable(self.ssl_context) and self.ssl_context() is None:
                # no certificate yet (a prefetch at start-up): not an attempt, keep waiting
                await self._sleep(NO_CERTIFICATE_POLL)
                continue
            try:
                if await self._stream(watch):
                    watch._settled.set()
                    return
                delay = self.backoff_first
            except (OSError, TimeoutError, ValueError, EOFError, asyncio.LimitOverrunError) as exc:
                log.debug("policy stream for port %d broke: %s", watch.port, exc)
            finally:
                watch.connected = False
            watch._settled.set()  # whatever happened, a first attempt was made
            await self._sleep(delay)
            delay = min(self.backoff_cap, delay * 2)

    async def _stream(self, watch: PortWatch) -> bool:
        """One connection; True when the answer is final (no point reconnecting)."""
        query = (
            f"namespace={quote(self.namespace, safe='')}&pod={quote(self.pod, safe='')}"
            f"&port={watch.port}"
        )
        async with get_lines(
            self.host,
            self.port,
            f"/v1/inbound?{query}",
            ssl_context=self.ssl_context,
            server_hostname=self.server_hostname,
            timeout=self.read_timeout,
            control=self.control,
        ) as (status, reader):
            if status == b"400":
                log.warning("the policy controller refused port %d of %s/%s", watch.port,
                            self.namespace, self.pod)  # fmt: skip
                return True
            if status != b"200":
                raise ValueError(
                    f"the policy controller answered {status.decode(errors='replace')}"
                )
            self.connects += 1
            watch.connected = True
            while True:
                line = await within(reader.readline(), self.read_timeout)
                if not line:
                    raise EOFError("the policy controller closed the stream")
                data = json.loads(line)
                kind = data.get("type") if isinstance(data, dict) else None
                if kind == "POLICY":
                    try:
                        watch._set(policy_from_dict(data.get("policy")))
                    except PolicyError as exc:
                        raise ValueError(f"bad policy from the controller: {exc}") from None
                elif kind == "NOT_FOUND":
                    watch.not_found = True
                    watch._settled.set()
                elif kind != "HEARTBEAT":
                    raise ValueError(f"unexpected line from the policy controller: {kind!r}")
