"""The meshed proxy: ready only with a certificate, identity metrics, configuration errors."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from tests.unit.controller.identity.running import KEY, RunningIdentity
from tests.unit.proxy.identity.pki import FakeClock, Pki
from tests.unit.proxy.sockets.apps import Backend

from lacewing.core.identity import Identity, mint_local_token
from lacewing.errors import ConfigError
from lacewing.proxy.config import Addr, load
from lacewing.proxy.identity.sidecar import IdentityConfig, MeshedProxyServer, load_identity_config
from lacewing.proxy.metrics.text import number

WEB = Identity("shop", "web")


def _proxy_config() -> object:
    return load(
        {
            "LACEWING_PROXY_INBOUND_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_OUTBOUND_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_ADMIN_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_SHUTDOWN_GRACE_PERIOD": "100ms",
        }
    )


def _identity(server: RunningIdentity, tmp_path: Path, port: int | None = None) -> IdentityConfig:
    token = tmp_path / "token"
    token.write_text(mint_local_token(KEY, "shop", "web") + "\n")
    return IdentityConfig(
        identity=WEB,
        service_addr=Addr("127.0.0.1", port or server.server.bound_port),
        service_identity=Identity("lacewing", "lacewing-identity"),
        trust_anchors_pem=server.pki.anchors_pem,
        token_file=token,
    )


async def test_ready_only_after_the_first_certificate_and_metrics_exposed(
    identity_server: RunningIdentity, tmp_path: Path
) -> None:
    proxy = MeshedProxyServer(_proxy_config(), _identity(identity_server, tmp_path))  # type: ignore[arg-type]
    await proxy.start()
    try:
        assert proxy.ready and proxy.holder.credentials is not None
        assert proxy.holder.identity == WEB
        text = "\n".join(proxy.render_metrics())
        assert "identity_cert_refresh_count 1" in text
        assert "# TYPE identity_cert_expiration_timestamp_seconds gauge" in text
        expiry = proxy.holder.credentials.not_after.timestamp()
        assert f"identity_cert_expiration_timestamp_seconds {number(expiry)}" in text  # exact
    finally:
        await proxy.shutdown()


async def test_not_ready_while_the_identity_service_is_unreachable_and_stops_cleanly(
    identity_server: RunningIdentity, tmp_path: Path
) -> None:
    config = _identity(identity_server, tmp_path, port=1)  # nothing listens on port 1
    proxy = MeshedProxyServer(_proxy_config(), config)  # type: ignore[arg-type]
    starting = asyncio.create_task(proxy.start(), name="test-meshed-start")
    try:
        for _ in range(100):
            if proxy.certificates.failure_count:
                break
            await asyncio.sleep(0.01)
        assert proxy.certificates.failure_count >= 1
        assert not proxy.ready
        assert "cannot reach the identity service" in proxy.certificates.last_error
        proxy.request_shutdown()
        await asyncio.wait_for(starting, 5)
        assert not proxy.ready
    finally:
        await proxy.shutdown()


def test_identity_settings_follow_the_install_sidecar_contract(tmp_path: Path) -> None:
    assert load_identity_config({}) is None
    pem = Pki.make().anchors_pem
    base = {  # what lacewing.install.sidecar puts in the proxy container
        "LACEWING_POD_NAMESPACE": "shop",
        "LACEWING_POD_SERVICE_ACCOUNT": "web",
        "LACEWING_IDENTITY_ADDR": "lacewing-identity.mesh.svc.cluster.local:8080",
        "LACEWING_IDENTITY_TRUST_DOMAIN": "cluster.local",
        "LACEWING_IDENTITY_TOKEN_FILE": "/var/run/secrets/tokens/lacewing-identity-token",
        "LACEWING_IDENTITY_TRUST_ANCHORS": pem,
    }
    config = load_identity_config(base)
    assert config is not None
    assert config.identity == WEB
    assert config.service_addr == Addr("lacewing-identity.mesh.svc.cluster.local", 8080)
    assert config.service_identity == Identity("mesh", "lacewing-identity")
    assert config.trust_anchors_pem.strip() == pem.strip()
    anchors = tmp_path / "ca.crt"
    anchors.write_text(pem)
    peers = f"10.0.0.2:8080={Identity('shop', 'api').name}"
    by_path = load_identity_config(
        {**base, "LACEWING_IDENTITY_TRUST_ANCHORS": str(anchors), "LACEWING_IDENTITY_PEERS": peers}
    )
    assert by_path is not None and by_path.trust_anchors_pem == pem
    assert by_path.peers == {Addr("10.0.0.2", 8080): Identity("shop", "api")}
    local = load_identity_config(  # what the local runtime sets (lacewing.local.controlplane)
        {
            "LACEWING_IDENTITY_NAME": WEB.name,
            "LACEWING_IDENTITY_SVC_ADDR": "10.42.0.10:8080",
            "LACEWING_IDENTITY_TRUST_ANCHORS": str(anchors),
            "LACEWING_IDENTITY_TOKEN_FILE": "/run/tokens/web.token",
        }
    )
    assert local is not None and local.identity == WEB
    assert local.service_identity == Identity("lacewing", "lacewing-identity")
    for change, message in [
        ({"LACEWING_IDENTITY_NAME": "web.shop"}, "LACEWING_IDENTITY_NAME"),
        ({"LACEWING_POD_SERVICE_ACCOUNT": ""}, "LACEWING_POD_SERVICE_ACCOUNT are required"),
        ({"LACEWING_POD_NAMESPACE": "Shop"}, "namespace 'Shop'"),
        ({"LACEWING_IDENTITY_TOKEN_FILE": ""}, "TOKEN_FILE is required"),
        ({"LACEWING_IDENTITY_PEERS": "10.0.0.2:8080"}, "not host:port=identity"),
        ({"LACEWING_IDENTITY_TRUST_ANCHORS": "/nonexistent"}, "cannot read /nonexistent"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_identity_config({**base, **change})


async def test_renewal_at_70_percent_keeps_open_connections_through_the_mesh(
    identity_server: RunningIdentity, tmp_path: Path
) -> None:
    """Two meshed proxies on an injected clock: renew, and the open path keeps working."""
    api = Identity("shop", "api")
    clock = FakeClock(now=time.time())
    async with Backend() as backend:
        b_id = _identity(identity_server, tmp_path)
        (tmp_path / "token-api").write_text(mint_local_token(KEY, "shop", "api"))
        b_id = IdentityConfig(api, b_id.service_addr, b_id.service_identity,
                              b_id.trust_anchors_pem, tmp_path / "token-api")  # fmt: skip
        b_cfg = load({
            "LACEWING_PROXY_INBOUND_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_OUTBOUND_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_ADMIN_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_INBOUND_FIXED_DST": f"127.0.0.1:{backend.port}",
            "LACEWING_PROXY_SHUTDOWN_GRACE_PERIOD": "100ms",
        })  # fmt: skip
        server = MeshedProxyServer(b_cfg, b_id, clock=clock)
        await server.start()
        b_in = server.bound["inbound"]
        a_id = _identity(identity_server, tmp_path)
        a_id = IdentityConfig(a_id.identity, a_id.service_addr, a_id.service_identity,
                              a_id.trust_anchors_pem, a_id.token_file, {b_in: api})  # fmt: skip
        a_cfg = load({
            "LACEWING_PROXY_INBOUND_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_OUTBOUND_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_ADMIN_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_OUTBOUND_FIXED_DST": str(b_in),
            "LACEWING_PROXY_SHUTDOWN_GRACE_PERIOD": "100ms",
        })  # fmt: skip
        client = MeshedProxyServer(a_cfg, a_id, clock=clock)
        await client.start()
        out = client.bound["outbound"]
        reader, writer = await asyncio.open_connection(out.host, out.port)
        try:

            async def get() -> bytes:
                writer.write(b"GET /hello HTTP/1.1\r\nHost: api\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                return head.split(b"\r\n")[0] + b" " + await reader.readexactly(5)

            assert await get() == b"HTTP/1.1 200 OK hello"
            old_b = server.holder.credentials
            assert old_b is not None
            await clock.advance(0)
            await clock.advance(0.7 * 86400 + 5)  # 70% of the 24h life
            for _ in range(300):
                if server.certificates.refresh_count == client.certificates.refresh_count == 2:
                    break
                await asyncio.sleep(0.01)
            assert server.certificates.refresh_count == client.certificates.refresh_count == 2
            new_b = server.holder.credentials
            assert new_b is not None
            new_leaf = x509.load_pem_x509_certificate(new_b.leaf.encode())
            old_leaf = x509.load_pem_x509_certificate(old_b.leaf.encode())
            assert new_leaf.serial_number != old_leaf.serial_number

            # the client's open connection and the pooled mTLS connection survived the swap
            assert await get() == b"HTTP/1.1 200 OK hello"
            assert client.connector.handshakes == 1
            # ...while a new handshake to the server sees its renewed certificate
            context = client.holder.client_context("http/1.1")
            r2, w2 = await asyncio.open_connection(
                b_in.host, b_in.port, ssl=context, server_hostname=api.name
            )
            peer = w2.get_extra_info("ssl_object").getpeercert(binary_form=True)
            assert peer == new_leaf.public_bytes(Encoding.DER)
            w2.close()
            del r2
        finally:
            writer.close()
            await client.shutdown()
            await server.shutdown()
