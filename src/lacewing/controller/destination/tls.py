"""The destination server's mTLS context, issued in-process from the identity issuer.

Given the identity issuer's files (`tls.crt`, `tls.key`) and the trust anchors, the server
makes itself a key and a leaf certificate for `destination.<namespace>.serviceaccount.
identity.lacewing.<trust domain>` (the identity its service account would have), presents it,
and *requires* a client certificate chaining to the same anchors: only proxies with a mesh
identity can read the endpoint streams. The certificate lives as long as the issuance
lifetime (24 h by default); a restart issues a fresh one.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lacewing.controller.identity.issuer_files import IssuerFiles, load_trust_anchors
from lacewing.core.identity import Identity
from lacewing.errors import CertificateError, UsageError
from lacewing.proxy.identity.credentials import Credentials, make_csr, new_private_key
from lacewing.proxy.identity.credentials import server_context as mtls_server_context
from lacewing.tls.issuance import issue_leaf

__all__ = ["serving_context"]


def serving_context(
    issuer_dir: Path,
    trust_anchors_file: Path,
    identity: Identity,
    *,
    lifetime: timedelta = timedelta(hours=24),
    now: datetime | None = None,
) -> ssl.SSLContext:
    try:
        anchors_pem = trust_anchors_file.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read --trust-anchors-file {trust_anchors_file}: {exc.strerror}"
        ) from None
    anchors = load_trust_anchors(anchors_pem, source=str(trust_anchors_file))
    issuer = IssuerFiles(issuer_dir, anchors).current()
    key = new_private_key()
    try:
        leaf = issue_leaf(
            make_csr(key, identity),
            identity,
            issuer,
            now=now or datetime.now(UTC),
            lifetime=lifetime,
        )
    except ValueError as exc:  # a name cryptography refuses to put in a certificate
        raise CertificateError(
            f"cannot issue the destination's certificate for {identity.name}: {exc}",
            hint="check --trust-domain and the control-plane namespace",
        ) from None
    creds = Credentials.from_pem(identity, key, leaf.leaf_pem, leaf.chain_pem)
    return mtls_server_context(creds, anchors_pem.decode())
