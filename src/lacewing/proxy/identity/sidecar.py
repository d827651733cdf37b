"""The proxy with workload identity: certificate first, then ready; mTLS on both sides.

`MeshedProxyServer` is the proxy server (`lacewing.proxy.server.ProxyServer`) plus:

- a `CertificateManager` that, once the listeners are bound and privileges dropped (the
  proxy's uid is exempt from the pod's iptables redirect, so its calls to the identity
  service are not captured), gets the first certificate and keeps renewing it. `/ready`
  stays 503 until the first certificate is installed;
- `MeshTlsConnector` on the outbound side (endpoints whose identity is known get mTLS) and
  `MeshTlsTerminator` on the inbound side (TLS from meshed peers, whose server name is this
  proxy's identity, is terminated; other TLS passes through to the app untouched);
- the identity metrics appended to `/metrics`:
  `identity_cert_expiration_timestamp_seconds`, `identity_cert_refresh_count`, and
  `identity_trust_anchors` (certificates in the trust bundle in use) with
  `identity_trust_bundle_reload_count` (times a changed bundle was picked up).

Configuration, as `lacewing install`'s sidecar sets it (`lacewing.install.sidecar`); identity
is on when `LACEWING_IDENTITY_ADDR` (or `_SVC_ADDR`) is set (`load_identity_config`):

    LACEWING_IDENTITY_ADDR            host:port of the identity controller
                                      (lacewing-identity.<ns>.svc.<domain>:8080; the identity
                                      pod's own proxy: localhost:8080);
                                      LACEWING_IDENTITY_SVC_ADDR is the same (local runtime)
    LACEWING_POD_NAMESPACE            the pod's namespace and service account (downward API):
    LACEWING_POD_SERVICE_ACCOUNT      the proxy's identity is SA.NS.serviceaccount...<td>
    LACEWING_IDENTITY_TRUST_DOMAIN    default cluster.local
    LACEWING_IDENTITY_TRUST_ANCHORS   the trust anchors: the path of a PEM file (the mounted
                                      lacewing-identity-trust-roots ConfigMap), watched and
                                      reloaded when it changes (anchor rotation), or PEM text
    LACEWING_IDENTITY_TOKEN_FILE      the token (projected service-account token, audience
                                      identity.lacewing.io, or a local-runtime token); read
                                      again at every renewal, since kubelet rotates it
    LACEWING_IDENTITY_NAME            optional: the full identity name instead of POD_*
    LACEWING_IDENTITY_SVC_NAME        the controller's identity (install sets it); default
                                      lacewing-identity.<ns>.serviceaccount.identity.lacewing.<td>,
                                      <ns> read from ADDR's `lacewing-identity.<ns>.svc` (else
                                      lacewing)
    LACEWING_IDENTITY_PEERS           static `host:port=identity,...` for endpoints discovery
                                      does not announce (discovery's identities come first;
                                      everything else stays plaintext)
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lacewing.core.identity import (
    DEFAULT_TRUST_DOMAIN,
    DESTINATION_SERVICE_ACCOUNT,
    POLICY_SERVICE_ACCOUNT,
    Identity,
    IdentityParseError,
    identity_service_name,
    parse_identity,
)
from lacewing.errors import CertificateError, ConfigError
from lacewing.proxy.admin import AdminServer, AdminState
from lacewing.proxy.config import Addr, Config, parse_addr
from lacewing.proxy.discovery.outbound import OutboundDiscovery
from lacewing.proxy.identity.client import IdentityClient
from lacewing.proxy.identity.holder import TlsHolder
from lacewing.proxy.identity.keygen import PendingKey
from lacewing.proxy.identity.mtls import (
    MESH_ALPN,
    TLS_NO_CLIENT_HELLO,
    TLS_NOT_DISCOVERED,
    MeshTlsConnector,
    MeshTlsTerminator,
)
from lacewing.proxy.identity.renewal import CertificateManager, Clock
from lacewing.proxy.metrics.text import sample
from lacewing.proxy.server import DestinationTls, ProxyServer
from lacewing.proxy.transport import PlainConnector
from lacewing.tls.bundle import TrustBundle

if TYPE_CHECKING:
    from lacewing.proxy.tap.server import TapServer

__all__ = ["IdentityConfig", "MeshedProxyServer", "load_identity_config"]

PREFIX = "LACEWING_IDENTITY_"
DESTINATION_ALPN = "http/1.1"  # the stream is JSON lines over HTTP/1.1


@dataclass(frozen=True)
class IdentityConfig:
    identity: Identity
    service_addr: Addr
    service_identity: Identity
    trust_anchors_pem: str
    token_file: Path
    peers: dict[Addr, Identity] = field(default_factory=dict)
    trust_anchors_file: Path | None = None  # watched: the bundle reloads when it changes

    def trust_bundle(self) -> TrustBundle:
        try:
            return TrustBundle(self.trust_anchors_pem, self.trust_anchors_file)
        except CertificateError as exc:
            raise ConfigError(f"{PREFIX}TRUST_ANCHORS: {exc}") from None


def _need(env: Mapping[str, str], name: str) -> str:
    value = env.get(PREFIX + name, "").strip()
    if not value:
        raise ConfigError(f"{PREFIX}{name} is required when {PREFIX}ADDR is set")
    return value


def _identity(text: str, variable: str) -> Identity:
    try:
        return parse_identity(text.strip())
    except IdentityParseError as exc:
        raise ConfigError(f"{variable}: {exc}") from None


def _addr(text: str, variable: str) -> Addr:
    try:
        return parse_addr(text)
    except ValueError as exc:
        raise ConfigError(f"{variable}: {exc}") from None


def _anchors(text: str) -> tuple[str, Path | None]:
    if "-----BEGIN" in text:
        return text, None
    try:
        return Path(text).read_text(), Path(text)
    except OSError as exc:
        raise ConfigError(
            f"{PREFIX}TRUST_ANCHORS: cannot read {text}: {exc.strerror}",
            hint="give the trust anchors as PEM text or as the path of a PEM file",
        ) from None


def _service_namespace(host: str) -> str:
    labels = host.split(".")
    if len(labels) >= 3 and labels[0] == "lacewing-identity" and labels[2] == "svc":
        return labels[1]
    return "lacewing"


def load_identity_config(env: Mapping[str, str]) -> IdentityConfig | None:
    """Parse the identity settings; None when identity is off (no LACEWING_IDENTITY_ADDR)."""
    addr_variable = next((PREFIX + v for v in ("ADDR", "SVC_ADDR") if env.get(PREFIX + v)), None)
    if addr_variable is None:
        return None
    service_addr = _addr(env[addr_variable], addr_variable)
    trust_domain = env.get(PREFIX + "TRUST_DOMAIN") or DEFAULT_TRUST_DOMAIN
    if env.get(PREFIX + "NAME"):
        identity = _identity(env[PREFIX + "NAME"], PREFIX + "NAME")
    else:
        namespace = env.get("LACEWING_POD_NAMESPACE", "")
        account = env.get("LACEWING_POD_SERVICE_ACCOUNT", "")
        if not namespace or not account:
            raise ConfigError(
                "LACEWING_POD_NAMESPACE and LACEWING_POD_SERVICE_ACCOUNT are required "
                f"when {PREFIX}ADDR is set",
                hint="set them from the downward API (metadata.namespace, "
                "spec.serviceAccountName), or set LACEWING_IDENTITY_NAME",
            )
        try:
            identity = Identity(namespace, account, trust_domain)
        except IdentityParseError as exc:
            raise ConfigError(f"the pod's identity: {exc}") from None
    default_svc = identity_service_name(
        _service_namespace(service_addr.host), identity.trust_domain
    )
    svc_name = env.get(PREFIX + "SVC_NAME")
    service = _identity(svc_name, PREFIX + "SVC_NAME") if svc_name else default_svc
    peers: dict[Addr, Identity] = {}
    for item in filter(None, (p.strip() for p in env.get(PREFIX + "PEERS", "").split(","))):
        addr, sep, name = item.partition("=")
        if not sep:
            raise ConfigError(f"{PREFIX}PEERS: {item!r} is not host:port=identity")
        peers[_addr(addr, PREFIX + "PEERS")] = _identity(name, PREFIX + "PEERS")
    anchors_pem, anchors_file = _anchors(_need(env, "TRUST_ANCHORS"))
    return IdentityConfig(
        identity=identity,
        service_addr=service_addr,
        service_identity=service,
        trust_anchors_pem=anchors_pem,
        token_file=Path(_need(env, "TOKEN_FILE")),
        peers=peers,
        trust_anchors_file=anchors_file,
    )


def _first_known(
    *lookups: Callable[[Addr], Identity | None],
) -> Callable[[Addr], Identity | None]:
    def lookup(addr: Addr) -> Identity | None:
        for find in lookups:
            found = find(addr)
            if found is not None:
                return found
        return None

    return lookup


class MeshedProxyServer(ProxyServer):
    def __init__(
        self,
        config: Config,
        identity: IdentityConfig,
        *,
        clock: Clock | None = None,
        key: PendingKey | None = None,
    ) -> None:
        """`key`: the child making this proxy's key and CSR (`keygen.start_keygen`, forked
        before the event loop started); without it they are made in this process."""
        self.identity_config = identity
        self.tap: TapServer | None = None
        self.bundle = identity.trust_bundle()
        self.holder = TlsHolder(self.bundle, alpn=MESH_ALPN)
        self.connector = MeshTlsConnector(
            self.holder,
            identity.peers.get,
            PlainConnector(config.connect_timeout),
            timeout=max(config.connect_timeout, 2.0),
        )
        # The control plane is reached with this proxy's identity too: destination's
        # certificate must name its service account in the identity controller's namespace.
        destination = Identity(
            identity.service_identity.namespace, DESTINATION_SERVICE_ACCOUNT,
            identity.identity.trust_domain,
        )  # fmt: skip
        destination_tls = DestinationTls(self._destination_context, destination.name)
        policy = Identity(
            identity.service_identity.namespace, POLICY_SERVICE_ACCOUNT,
            identity.identity.trust_domain,
        )  # fmt: skip
        policy_tls = DestinationTls(self._destination_context, policy.name)
        super().__init__(config, connector=self.connector, destination_tls=destination_tls,
                         policy_tls=policy_tls)  # fmt: skip
        discovery = self.sides[1].discovery
        if isinstance(discovery, OutboundDiscovery):
            # mTLS follows discovery: an endpoint announced with an identity gets mutual TLS
            # verified against it; the static LACEWING_IDENTITY_PEERS list is the fallback.
            self.connector.expected_identity = _first_known(discovery.identity, identity.peers.get)
        self.connector.on_failure = lambda reason: self.metrics.error("outbound", f"tls_{reason}")
        # TLS naming this identity is terminated; other TLS passes through to the app
        self.terminator = MeshTlsTerminator(self.holder, local_identity=identity.identity)
        self.sides[0].tls_terminator = self.terminator
        # plaintext through a meshed proxy is "no identity", with Linkerd's reasons (tls="disabled"
        # is for a proxy without identity): from an unmeshed client, to an endpoint that
        # discovery gave no identity
        self.sides[0].tls, self.sides[1].tls = TLS_NO_CLIENT_HELLO, TLS_NOT_DISCOVERED
        client = IdentityClient(
            identity.service_addr.host,
            identity.service_addr.port,
            identity.service_identity,
            self.bundle,
        )
        client.control = self.metrics.control.addr(client.address)
        self.certificates = CertificateManager(
            identity.identity, client, self._read_token, self.holder, clock=clock, key=key
        )
        self.admin = AdminServer(
            AdminState(
                self.render_metrics,
                self.is_ready,
                self.request_shutdown,
                policy=self.policy_snapshot(),
            )
        )

    def is_ready(self) -> bool:
        return self.ready

    def _destination_context(self) -> ssl.SSLContext | None:
        """The client context for destination's stream; None until the first certificate."""
        if not self.holder.ready.is_set():
            return None
        return self.holder.client_context(DESTINATION_ALPN)

    def _read_token(self) -> str:
        try:
            return self.identity_config.token_file.read_text().strip()
        except OSError:
            return ""  # the identity service answers 401, and the manager retries

    def _bundle_count(self) -> int:
        self.bundle.refresh()
        return self.bundle.count

    def render_metrics(self) -> list[str]:
        lines = self.metrics.render()
        metrics = {
            **self.certificates.metrics(),
            "identity_trust_anchors": float(self._bundle_count()),
            "identity_trust_bundle_reload_count": float(self.bundle.generation - 1),
        }
        for name, value in metrics.items():
            kind = "counter" if name.endswith("_count") else "gauge"
            lines += [f"# TYPE {name} {kind}", sample(name, "", value)]  # (not :g: 6 digits)
        return lines

    async def start(self) -> None:
        await super().start()
        self.ready = False  # not before a certificate (no await since super() set it)
        getting = asyncio.ensure_future(self.certificates.start())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (getting, stopping):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.holder.credentials is not None and not self._stop.is_set():
            await self._start_tap()
            self.ready = True

    async def _start_tap(self) -> None:
        """The tap listener, over mutual TLS with this proxy's certificate (`proxy.tap`)."""
        cfg = self.config
        if cfg.tap_listen_addr is None:
            return
        from lacewing.proxy.tap.server import TapServer, default_allowed

        own = self.identity_config.identity
        allowed = cfg.tap_allowed_identities or default_allowed(own.trust_domain)
        local = {"namespace": cfg.pod_namespace or own.namespace, "pod": cfg.pod_name,
                 "identity": own.name}  # fmt: skip
        self.tap = TapServer(self.metrics.tap, self.holder.listener_context, allowed, local)
        server = await self.tap.start(cfg.tap_listen_addr.host, cfg.tap_listen_addr.port)
        host, port = server.sockets[0].getsockname()[:2]
        self.bound["tap"] = Addr(host, port)

    async def shutdown(self) -> None:
        await self.certificates.stop()
        if self.tap is not None:
            await self.tap.close()
        await super().shutdown()


if __name__ == "__main__":  # kept for older launch scripts: the same as `python -m lacewing.proxy`
    import runpy

    runpy.run_module("lacewing.proxy", run_name="__main__")
