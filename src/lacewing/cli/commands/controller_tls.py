"""The mTLS flags a streaming controller (destination, policy) serves with.

`serving_tls(flags, service_account, namespace)` checks the flag combination and returns one
of three things (`ServingTls`):

- `certified`: with `--identity-addr` + `--identity-token-file` + `--trust-anchors-file`, a
  certificate asked from the identity service with the pod's projected service-account token,
  as a proxy gets one (`controller.destination.tls.IdentityCertified`); what install renders.
  The issuer's key never leaves the identity pod;
- `context`: with `--issuer-dir` + `--trust-anchors-file`, a certificate issued in-process
  from the issuer's files (the local runtime, which has no identity Service to ask first);
- neither: plaintext, for loopback use.

`first_certificate(certified, stop)` waits for the first certificate, or for `stop`: the
controller listens only once it can serve mTLS, so its readiness probe (a TCP connect) means
what it says; None when told to stop first. `serve_over(tls, name, out, stop, serve)` is the
whole of it for a controller: wait (saying so), `serve(context)`, and stop the renewal after.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lacewing.errors import UsageError

if TYPE_CHECKING:
    from lacewing.cli.context import Output
    from lacewing.controller.destination.tls import IdentityCertified

__all__ = ["ServingTls", "TlsFlags", "first_certificate", "serve_over", "serving_tls"]


@dataclass(frozen=True)
class TlsFlags:
    trust_domain: str = "cluster.local"
    issuer_dir: Path | None = None
    trust_anchors_file: Path | None = None
    identity_addr: str | None = None
    identity_token_file: Path | None = None


@dataclass(frozen=True)
class ServingTls:
    certified: IdentityCertified | None = None
    context: ssl.SSLContext | None = None


def serving_tls(flags: TlsFlags, service_account: str, namespace: str) -> ServingTls:
    """Check the TLS flags (one line per mistake) and prepare what they ask for."""
    from lacewing.core.identity import Identity, IdentityParseError

    if flags.issuer_dir is not None and flags.identity_addr is not None:
        raise UsageError(
            "--issuer-dir and --identity-addr exclude each other",
            hint="on Kubernetes use --identity-addr (a certificate from identity, as proxies get)",
        )
    wants_tls = flags.issuer_dir is not None or flags.identity_addr is not None
    if wants_tls != (flags.trust_anchors_file is not None):
        raise UsageError(
            "--trust-anchors-file goes with --identity-addr or --issuer-dir",
            hint="pass both to serve over mTLS, or neither for plaintext (loopback only)",
        )
    if (flags.identity_addr is None) != (flags.identity_token_file is None):
        raise UsageError("--identity-addr and --identity-token-file go together")
    if not wants_tls or flags.trust_anchors_file is None:
        return ServingTls()
    try:
        identity = Identity(namespace, service_account, flags.trust_domain)
    except IdentityParseError as exc:
        raise UsageError(f"--trust-domain / namespace: {exc}") from None
    if flags.identity_addr is not None and flags.identity_token_file is not None:
        from lacewing.controller.destination.tls import IdentityCertified
        from lacewing.core.identity import identity_service_name

        host, sep, port = flags.identity_addr.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise UsageError(f"--identity-addr: {flags.identity_addr!r} is not HOST:PORT")
        certified = IdentityCertified(
            identity,
            (host.strip("[]"), int(port)),
            identity_service_name(namespace, flags.trust_domain),
            flags.identity_token_file,
            flags.trust_anchors_file,
        )
        return ServingTls(certified=certified)
    from lacewing.controller.destination.tls import serving_context

    assert flags.issuer_dir is not None
    return ServingTls(context=serving_context(flags.issuer_dir, flags.trust_anchors_file, identity))


async def first_certificate(
    certified: IdentityCertified, stop: asyncio.Event | None
) -> ssl.SSLContext | None:
    """The listening context once identity answered; None (renewal stopped) on `stop`."""
    first = asyncio.ensure_future(certified.start())
    stopped = asyncio.ensure_future((stop or asyncio.Event()).wait())
    await asyncio.wait({first, stopped}, return_when=asyncio.FIRST_COMPLETED)
    for task in (first, stopped):
        task.cancel()  # no-op on the one that finished
    await asyncio.gather(first, stopped, return_exceptions=True)
    if first.cancelled():
        await certified.stop()
        return None
    return first.result()


async def serve_over(
    tls: ServingTls,
    name: str,
    out: Output,
    stop: asyncio.Event | None,
    serve: Callable[[ssl.SSLContext | None], Awaitable[None]],
) -> None:
    """`serve(context)` once the context is there (the certified one: after identity's first
    answer, or nothing if told to stop first); the renewal is stopped however serving ends."""
    context, certified = tls.context, tls.certified
    if certified is not None:
        out.line(f"{name}: waiting for a certificate from identity at {certified.address}")
        out.out.flush()
        context = await first_certificate(certified, stop)
        if context is None:  # told to stop before identity answered
            return
    try:
        await serve(context)
    finally:
        if certified is not None:
            await certified.stop()
