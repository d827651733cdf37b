"""Holds the proxy's current TLS contexts and swaps them on renewal without dropping anything.

Each renewal builds a fresh pair of `ssl.SSLContext`s from the new credentials and replaces
the references in one assignment. A TLS connection keeps the context (and certificate) it
was handshaken with for its whole life, so open connections are untouched; only handshakes
that start after the swap see the new certificate.

Code that dials asks for `holder.client_context()` at connect time (or
`client_context(alpn)` for one offering a single ALPN protocol; those are built lazily per
certificate). Listeners are created
once, so they get `holder.listener_context()`: a context that owns no certificate and, in
its SNI callback (which OpenSSL calls for every ClientHello, with or without SNI), points
the half-open connection at the current server context. That keeps one listening socket
across any number of renewals.

The trust anchors come from a `TrustBundle` (a file that may change: trust-anchor rotation).
Every context request and every inbound handshake first asks the bundle whether it changed
(a stat at most once a second); on a new generation both contexts are rebuilt from the
current credentials and the new anchors, exactly as on a renewal, so new handshakes verify
against the new bundle while established connections keep theirs until they close.

`ready` is set when the first credentials arrive; the proxy reports ready only after it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence

from lacewing.core.identity import Identity
from lacewing.errors import CertificateError
from lacewing.proxy.identity.credentials import (
    NO_TICKETS,
    Credentials,
    client_context,
    server_context,
)
from lacewing.tls.bundle import TrustBundle

__all__ = ["TlsHolder"]


class TlsHolder:
    def __init__(self, trust_anchors: TrustBundle | str, alpn: Sequence[str] = ()) -> None:
        self.bundle = (
            trust_anchors if isinstance(trust_anchors, TrustBundle) else TrustBundle(trust_anchors)
        )
        self._generation = self.bundle.generation
        self.alpn = tuple(alpn)
        self.ready = asyncio.Event()
        self.swaps = 0
        self.bundle_reloads = 0
        # called before each inbound handshake (a controller that issues its own certificate
        # in-process re-issues there when its issuer changed)
        self.before_handshake: Callable[[], None] | None = None
        self._credentials: Credentials | None = None
        self._server: ssl.SSLContext | None = None
        self._client: ssl.SSLContext | None = None
        self._listener: ssl.SSLContext | None = None
        self._client_by_alpn: dict[str, ssl.SSLContext] = {}

    @property
    def credentials(self) -> Credentials | None:
        return self._credentials

    @property
    def identity(self) -> Identity | None:
        return self._credentials.identity if self._credentials else None

    @property
    def trust_anchors_pem(self) -> str:
        return self.bundle.pem()

    def update(self, creds: Credentials) -> None:
        """Install new credentials: both contexts are built first, then swapped together."""
        self._install(creds)
        self.swaps += 1
        self.ready.set()

    def _install(self, creds: Credentials) -> None:
        anchors, self._generation = self.bundle.pem(), self.bundle.generation
        server = server_context(creds, anchors, self.alpn)
        client = client_context(creds, anchors, self.alpn)
        self._credentials, self._server, self._client = creds, server, client
        self._client_by_alpn = {}  # rebuilt lazily from the new credentials and anchors

    def _follow_bundle(self) -> None:
        """Rebuild the contexts if the trust bundle changed since they were built."""
        self.bundle.refresh()
        if self.bundle.generation != self._generation and self._credentials is not None:
            self._install(self._credentials)
            self.bundle_reloads += 1

    def _require(self, context: ssl.SSLContext | None) -> ssl.SSLContext:
        if context is None:
            raise CertificateError(
                "this proxy has no certificate yet", hint="wait until the proxy reports ready"
            )
        return context

    def server_context(self) -> ssl.SSLContext:
        self._follow_bundle()
        return self._require(self._server)

    def client_context(self, alpn: str | None = None) -> ssl.SSLContext:
        """The outbound context; with `alpn`, one that offers only that protocol."""
        self._follow_bundle()
        if alpn is None:
            return self._require(self._client)
        context = self._client_by_alpn.get(alpn)
        if context is None:
            creds = self._credentials
            if creds is None:
                return self._require(None)
            context = client_context(creds, self.bundle.pem(), (alpn,))
            self._client_by_alpn[alpn] = context
        return context

    def listener_context(self) -> ssl.SSLContext:
        """A stable server context that always handshakes with the current certificate."""
        if self._listener is None:
            listener = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            listener.minimum_version = ssl.TLSVersion.TLSv1_3
            # The verify mode is fixed when the connection is created (OpenSSL does not take
            # it from the context switched to), so the listener itself demands a client cert;
            # the trust store and certificate come from the current server context.
            listener.verify_mode = ssl.CERT_REQUIRED
            # (the ticket count too is the listener's: OpenSSL copies it at SSL_new)
            listener.num_tickets = NO_TICKETS
            if self.alpn:
                listener.set_alpn_protocols(list(self.alpn))
            listener.sni_callback = self._pick_server_context
            self._listener = listener
        return self._listener

    def _pick_server_context(
        self, conn: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> int | None:
        if self.before_handshake is not None:
            self.before_handshake()
        self._follow_bundle()
        if self._server is None:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE  # no certificate yet: refuse
        conn.context = self._server
        return None
