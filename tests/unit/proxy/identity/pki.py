"""Test helpers for identity tests: a trust anchor + issuer, and a fake clock.

Certificates come from role B's `lacewing.tls.pki` (the same code `install` uses), so the
tests exercise the issuer shape real installs have.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lacewing.core.identity import Identity
from lacewing.proxy.identity.credentials import Credentials
from lacewing.proxy.identity.keygen import generate_in_process
from lacewing.tls.issuance import Issuer, issue_leaf
from lacewing.tls.pki import CertifiedKey, generate_issuer, generate_trust_anchor

TD = "cluster.local"


@dataclass
class Pki:
    anchor: CertifiedKey
    issuer_ck: CertifiedKey
    trust_domain: str = TD

    @classmethod
    def make(
        cls,
        trust_domain: str = TD,
        *,
        now: datetime | None = None,
        issuer_lifetime: timedelta = timedelta(days=365),
    ) -> Pki:
        anchor = generate_trust_anchor(trust_domain, now=now)
        issuer = generate_issuer(anchor, trust_domain, now=now, lifetime=issuer_lifetime)
        return cls(anchor, issuer, trust_domain)

    @property
    def anchors_pem(self) -> str:
        return self.anchor.cert_pem

    @property
    def issuer(self) -> Issuer:
        return Issuer.from_pem(self.issuer_ck.cert_pem.encode(), self.issuer_ck.key_pem.encode())

    def rotate_issuer(
        self, *, now: datetime | None = None, lifetime: timedelta = timedelta(days=365)
    ) -> None:
        self.issuer_ck = generate_issuer(self.anchor, self.trust_domain, now=now, lifetime=lifetime)

    def write_issuer_dir(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "tls.crt").write_text(self.issuer_ck.cert_pem)
        (directory / "tls.key").write_text(self.issuer_ck.key_pem)
        return directory

    def identity(self, namespace: str = "shop", sa: str = "web") -> Identity:
        return Identity(namespace, sa, self.trust_domain)


@dataclass
class FakeClock:
    """Wall time that moves only when a test says so; `sleep` waits for `advance`."""

    now: float = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    sleeps: list[float] = field(default_factory=list)
    _waiters: list[tuple[float, asyncio.Future[None]]] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self.now + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        for deadline, future in list(self._waiters):
            if deadline <= self.now and not future.done():
                future.set_result(None)
                self._waiters.remove((deadline, future))
        for _ in range(20):  # let woken tasks run until they block again
            await asyncio.sleep(0)

    @property
    def sleeping(self) -> int:
        return sum(1 for _, f in self._waiters if not f.done())


def issue_credentials(
    pki: Pki,
    identity: Identity,
    *,
    now: datetime | None = None,
    lifetime: timedelta = timedelta(hours=24),
) -> Credentials:
    """Credentials for `identity` signed directly by the test issuer (no server involved)."""
    made = generate_in_process(identity)
    leaf = issue_leaf(
        made.csr_pem,
        identity,
        pki.issuer,
        now=now or datetime.now(UTC),
        lifetime=lifetime,
    )
    return Credentials.from_pem(identity, made.key_pem, leaf.leaf_pem, leaf.chain_pem)
