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

`ready` is set when the first credentials arrive; the proxy reports ready only after it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence

from lacewing.core.identity import Identity
from lacewing.errors import CertificateError
from lacewing.proxy.identity.credentials import (
    NO_TICKETS,
    Credentials,
    client_context,
    server_context,
)

__all__ = ["TlsHolder"]


class TlsHolder:
    def __init__(self, trust_anchors_pem: str, alpn: Sequence[str] = ()) -> None:
        self.trust_anchors_pem = trust_anchors_pem
        self.alpn = tuple(alpn)
        self.ready = asyncio.Event()
        self.swaps = 0
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

    def update(self, creds: Credentials) -> None:
        """Install new credentials: both contexts are built first, then swapped together."""
        server = server_context(creds, self.trust_anchors_pem, self.alpn)
        client = client_context(creds, self.trust_anchors_pem, self.alpn)
        self._credentials, self._server, self._client = creds, server, client
        self._client_by_alpn = {}  # rebuilt lazily from the new credentials
        self.swaps += 1
        self.ready.set()

    def _require(self, context: ssl.SSLContext | None) -> ssl.SSLContext:
        if context is None:
            raise CertificateError(
                "this proxy has no certificate yet", hint="wait until the proxy reports ready"
            )
        return context

    def server_context(self) -> ssl.SSLContext:
        return self._require(self._server)

    def client_context(self, alpn: str | None = None) -> ssl.SSLContext:
        """The outbound context; with `alpn`, one that offers only that protocol."""
        if alpn is None:
            return self._require(self._client)
        context = self._client_by_alpn.get(alpn)
        if context is None:
            creds = self._credentials
            if creds is None:
                return self._require(None)
            context = client_context(creds, self.trust_anchors_pem, (alpn,))
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
        if self._server is None:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE  # no certificate yet: refuse
        conn.context = self._server
        return None
