"""Get the proxy's certificate at start, and keep it fresh: renew at 70% of its life.

    start()   key and CSR (made once, in memory; `keygen`) -> certify -> holder.update -> ready
              retried with backoff until it succeeds: the proxy is not ready without it
    run()     loop: sleep until 70% of the current certificate's life has passed (measured
              from when it was received, so a CA clock ahead or behind does not matter),
              renew; on failure sleep the next backoff delay (1s, 2s, 4s ... 60s) and retry,
              for as long as it takes; the old certificate keeps serving meanwhile. The
              delay never reaches past the certificate's expiry, and once it has expired
              attempts come every 5 s at most (`EXPIRED_RETRY`).

Every success swaps the holder's TLS contexts (open connections keep theirs), bumps
`refresh_count` and sets `expiration_timestamp`: the values the proxy's metrics registry
exposes as `identity_cert_refresh_count` and `identity_cert_expiration_timestamp_seconds`
(`metrics()` returns them by those names).

Time is a `Clock` (wall time and sleep), so tests drive renewal and backoff with a fake one
instead of sleeping. The background loop is one named task owned by the manager; `stop()`
cancels and awaits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lacewing.core.identity import Identity
from lacewing.errors import CertificateError, IdentityError
from lacewing.proxy.identity.client import CertifyResponse
from lacewing.proxy.identity.credentials import Credentials
from lacewing.proxy.identity.holder import TlsHolder
from lacewing.proxy.identity.keygen import KeyAndCsr, PendingKey, generate_in_process

__all__ = [
    "Backoff",
    "CertificateManager",
    "Certifier",
    "Clock",
    "SystemClock",
]

log = logging.getLogger(__name__)

RENEW_AT_FRACTION = 0.7
EXPIRED_RETRY = 5.0  # seconds between attempts once the certificate has expired


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Certifier(Protocol):
    """What the manager needs of the identity client (an IdentityClient, or a fake)."""

    async def certify(self, identity: Identity, token: str, csr_pem: str) -> CertifyResponse: ...


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0

    def delay(self, failures: int) -> float:
        """The wait after the `failures`-th consecutive failure (1-based)."""
        return float(min(self.maximum, self.initial * self.factor ** max(0, failures - 1)))


class CertificateManager:
    def __init__(
        self,
        identity: Identity,
        certifier: Certifier,
        token: Callable[[], str],
        holder: TlsHolder,
        *,
        clock: Clock | None = None,
        backoff: Backoff = Backoff(),
        renew_at: float = RENEW_AT_FRACTION,
        key: PendingKey | KeyAndCsr | None = None,
    ) -> None:
        """`key`: the key and CSR, or the child making them (`keygen.start_keygen`); made
        here, in this process, when not given."""
        self.identity = identity
        self.certifier = certifier
        self.token = token
        self.holder = holder
        self.clock: Clock = clock or SystemClock()
        self.backoff = backoff
        self.renew_at = renew_at
        self._key: PendingKey | KeyAndCsr = key or generate_in_process(identity)
        self._task: asyncio.Task[None] | None = None
        self.refresh_count = 0
        self.failure_count = 0
        self.expiration_timestamp = 0.0
        self.next_refresh = 0.0
        self.last_error = ""

    def metrics(self) -> dict[str, float]:
        return {
            "identity_cert_expiration_timestamp_seconds": self.expiration_timestamp,
            "identity_cert_refresh_count": float(self.refresh_count),
        }

    async def refresh(self) -> Credentials:
        """One certify round trip; installs the new certificate in the holder."""
        made = self._key.result() if isinstance(self._key, PendingKey) else self._key
        self._key = made
        received = self.clock.time()
        answer = await self.certifier.certify(self.identity, self.token(), made.csr_pem)
        # (from_pem refuses a certificate for another key)
        creds = Credentials.from_pem(self.identity, made.key_pem, answer.leaf_pem, answer.chain_pem)
        self.holder.update(creds)
        expires = creds.not_after.timestamp()
        self.refresh_count += 1
        self.expiration_timestamp = expires
        self.next_refresh = received + max(0.0, expires - received) * self.renew_at
        self.last_error = ""
        log.info("certificate for %s valid until %s", self.identity, creds.not_after.isoformat())
        return creds

    async def _refresh_until_ok(self) -> None:
        failures = 0
        while True:
            try:
                await self.refresh()
                return
            except (IdentityError, CertificateError, OSError) as exc:
                failures += 1
                self.failure_count += 1
                self.last_error = str(exc)
                delay = self._retry_delay(failures)
                log.warning("certificate refresh failed (%s); retrying in %.0fs", exc, delay)
                await self.clock.sleep(delay)

    def _retry_delay(self, failures: int) -> float:
        """The backoff delay, but never past the current certificate's expiry, and at most
        `EXPIRED_RETRY` once it has expired: without a valid certificate every new mTLS
        connection fails, so identity coming back must be noticed within seconds."""
        delay = self.backoff.delay(failures)
        if self.expiration_timestamp:
            left = self.expiration_timestamp - self.clock.time()
            delay = min(delay, left if left > self.backoff.initial else EXPIRED_RETRY)
        return delay

    async def start(self) -> None:
        """Get the first certificate (retrying) and start the renewal loop."""
        if self.holder.credentials is None:
            await self._refresh_until_ok()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"identity-renewal:{self.identity}")

    async def _loop(self) -> None:
        try:
            while True:
                await self.clock.sleep(max(0.0, self.next_refresh - self.clock.time()))
                await self._refresh_until_ok()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: say so loudly, the old certificate keeps serving
            log.exception("the certificate renewal loop died")
            raise

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
