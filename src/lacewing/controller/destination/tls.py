"""The destination server's mTLS context: from the identity service, or from the issuer's files.

On Kubernetes (`IdentityCertified`), destination gets its certificate the way a proxy does:
a key made in memory, a CSR for `lacewing-destination.<namespace>.serviceaccount.identity.
lacewing.<trust domain>` and its projected service-account token, sent to the identity service
(`lacewing.proxy.identity.client.IdentityClient`, verified against the trust anchors), renewed
at 70% of its life by the proxy's own `CertificateManager`. The listening context (the
holder's `listener_context`) presents the current certificate on every handshake and requires
a client certificate chaining to the anchors. The first certificate is awaited before
destination listens, so its readiness probe (a TCP connect) means it can serve mTLS. The
issuer's key never leaves the identity pod.

The local runtime (`serving_context`) has no identity Service for the destination to ask
before the mesh is up, so it issues in-process from the issuer's files. Given the identity
issuer's files (`tls.crt`, `tls.key`) and the trust anchors, the server
makes itself a key and a leaf certificate for `destination.<namespace>.serviceaccount.
identity.lacewing.<trust domain>` (the identity its service account would have), presents it,
and *requires* a client certificate chaining to the same anchors: only proxies with a mesh
identity can read the endpoint streams. The certificate lives as long as the issuance
lifetime (24 h by default); a restart issues a fresh one, and so does the first handshake
after the issuer files changed (issuer or anchor rotation).

Both ways the trust anchors file is a watched `TrustBundle`: a rotated bundle is used for
the next handshakes (clients verified, identity service verified) without a restart.
"""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lacewing.controller.identity.issuer_files import IssuerFiles, load_trust_anchors
from lacewing.core.identity import Identity
from lacewing.errors import CertificateError, UsageError
from lacewing.proxy.identity.client import IdentityClient
from lacewing.proxy.identity.credentials import Credentials, make_csr, new_private_key
from lacewing.proxy.identity.holder import TlsHolder
from lacewing.proxy.identity.renewal import CertificateManager
from lacewing.tls.bundle import TrustBundle
from lacewing.tls.issuance import Issuer, issue_leaf

__all__ = ["IdentityCertified", "serving_context"]

log = logging.getLogger(__name__)


class IdentityCertified:
    """Destination's certificate from the identity service, renewed in the background."""

    def __init__(
        self,
        identity: Identity,
        service_addr: tuple[str, int],
        service_identity: Identity,
        token_file: Path,
        trust_anchors_file: Path,
    ) -> None:
        bundle = _bundle(trust_anchors_file)
        self.token_file = token_file
        self.holder = TlsHolder(bundle)
        client = IdentityClient(*service_addr, service_identity, bundle)
        self.address = client.address
        self.manager = CertificateManager(identity, client, self._token, self.holder)

    def _token(self) -> str:
        try:
            return self.token_file.read_text().strip()
        except OSError as exc:  # the identity service answers 401; the manager retries
            log.warning("cannot read the identity token %s: %s", self.token_file, exc.strerror)
            return ""

    async def start(self) -> ssl.SSLContext:
        """Wait for the first certificate (retrying with backoff), then keep renewing it."""
        await self.manager.start()
        return self.holder.listener_context()

    async def stop(self) -> None:
        await self.manager.stop()


def _bundle(trust_anchors_file: Path) -> TrustBundle:
    try:
        anchors_pem = trust_anchors_file.read_text()
    except OSError as exc:
        raise UsageError(
            f"cannot read --trust-anchors-file {trust_anchors_file}: {exc.strerror}"
        ) from None
    load_trust_anchors(anchors_pem.encode(), source=str(trust_anchors_file))
    return TrustBundle(anchors_pem, trust_anchors_file)


class _IssuedInProcess:
    """The local runtime's serving certificate, re-issued when the issuer files change."""

    def __init__(
        self, issuer_dir: Path, bundle: TrustBundle, identity: Identity, lifetime: timedelta
    ) -> None:
        self.identity, self.lifetime = identity, lifetime
        self.issuer_files = IssuerFiles(issuer_dir, bundle.anchors(), bundle)
        self.holder = TlsHolder(bundle)
        self.holder.before_handshake = self.refresh
        self._issuer: Issuer | None = None

    def refresh(self, now: datetime | None = None) -> None:
        issuer = self.issuer_files.current()
        if issuer is self._issuer:
            return
        key = new_private_key()
        try:
            leaf = issue_leaf(
                make_csr(key, self.identity),
                self.identity,
                issuer,
                now=now or datetime.now(UTC),
                lifetime=self.lifetime,
            )
        except ValueError as exc:  # a name cryptography refuses to put in a certificate
            raise CertificateError(
                f"cannot issue the destination's certificate for {self.identity.name}: {exc}",
                hint="check --trust-domain and the control-plane namespace",
            ) from None
        self.holder.update(Credentials.from_pem(self.identity, key, leaf.leaf_pem, leaf.chain_pem))
        self._issuer = issuer


def serving_context(
    issuer_dir: Path,
    trust_anchors_file: Path,
    identity: Identity,
    *,
    lifetime: timedelta = timedelta(hours=24),
    now: datetime | None = None,
) -> ssl.SSLContext:
    issued = _IssuedInProcess(issuer_dir, _bundle(trust_anchors_file), identity, lifetime)
    issued.refresh(now)  # a missing or broken issuer fails here, with its message
    return issued.holder.listener_context()
