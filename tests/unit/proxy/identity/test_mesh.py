"""Two real proxies on loopback joined by mutual TLS through the proxy's TLS seams.

    client --HTTP--> proxy A outbound --mTLS--> proxy B inbound --HTTP--> Backend

A gets `MeshTlsConnector` (knows B's inbound address is `api.shop`), B gets
`MeshTlsTerminator` installed as its inbound side's `tls_terminator`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from tests.unit.proxy.identity.pki import Pki, issue_credentials
from tests.unit.proxy.promtext import parse
from tests.unit.proxy.sockets.apps import Backend
from tests.unit.proxy.sockets.h2apps import h2_backend, h2_requests

from lacewing.core.identity import Identity
from lacewing.proxy.config import Addr, load
from lacewing.proxy.h2.server import H2Server
from lacewing.proxy.identity.holder import TlsHolder
from lacewing.proxy.identity.mtls import MESH_ALPN, MeshTlsConnector, MeshTlsTerminator
from lacewing.proxy.server import ProxyServer
from lacewing.proxy.transport import PlainConnector
from lacewing.tls.pem import key_to_pem
from lacewing.tls.pki import generate_serving_certificate, generate_webhook_ca

WEB = Identity("shop", "web")
API = Identity("shop", "api")


def _config(**env: str) -> object:
    base = {
        "LACEWING_PROXY_INBOUND_LISTEN_ADDR": "127.0.0.1:0",
        "LACEWING_PROXY_OUTBOUND_LISTEN_ADDR": "127.0.0.1:0",
        "LACEWING_PROXY_ADMIN_LISTEN_ADDR": "127.0.0.1:0",
        "LACEWING_PROXY_SHUTDOWN_GRACE_PERIOD": "100ms",
    }
    return load({**base, **{f"LACEWING_PROXY_{k.upper()}": v for k, v in env.items()}})


@dataclass
class Mesh:
    backend: Backend
    server: ProxyServer
    client: ProxyServer
    connector: MeshTlsConnector
    terminator: MeshTlsTerminator
    b_inbound: Addr


async def _pair(pki: Pki, backend: Backend, expected: Identity, opaque: bool = False,
                backend_port: int | None = None,
                b_lifetime: timedelta = timedelta(hours=24)) -> Mesh:  # fmt: skip
    b_holder = TlsHolder(pki.anchors_pem, alpn=MESH_ALPN)
    b_holder.update(issue_credentials(pki, API, lifetime=b_lifetime))
    port = backend.port if backend_port is None else backend_port
    server = ProxyServer(_config(inbound_fixed_dst=f"127.0.0.1:{port}"))  # type: ignore[arg-type]
    terminator = MeshTlsTerminator(b_holder)
    server.sides[0].tls_terminator = terminator
    await server.start()
    b_inbound = server.bound["inbound"]

    a_holder = TlsHolder(pki.anchors_pem, alpn=MESH_ALPN)
    a_holder.update(issue_credentials(pki, WEB))
    env = {"outbound_fixed_dst": str(b_inbound)}
    if opaque:
        env["opaque_ports"] = str(b_inbound.port)
    config = _config(**env)
    connector = MeshTlsConnector(
        a_holder,
        lambda addr: expected if addr == b_inbound else None,
        PlainConnector(1.0),
        timeout=2.0,
    )
    client = ProxyServer(config, connector=connector)  # type: ignore[arg-type]
    connector.on_failure = lambda reason: client.metrics.error("outbound", f"tls_{reason}")
    await client.start()
    return Mesh(backend, server, client, connector, terminator, b_inbound)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.make()


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend() as b:
        yield b


async def _get(addr: Addr, path: str = "/hello", n: int = 1) -> list[bytes]:
    reader, writer = await asyncio.open_connection(addr.host, addr.port)
    answers = []
    try:
        for _ in range(n):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: api\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")]
            body = await reader.readexactly(int(length[0].split(b":")[1])) if length else b""
            answers.append(head.split(b"\r\n")[0] + b" " + body)
    finally:
        writer.close()
    return answers


async def _shutdown(mesh: Mesh) -> None:
    await mesh.client.shutdown()
    await mesh.server.shutdown()


async def test_requests_cross_mtls_with_identities_in_metrics_and_one_handshake(
    pki: Pki, backend: Backend
) -> None:
    mesh = await _pair(pki, backend, API)
    try:
        answers = await _get(mesh.client.bound["outbound"], n=3)
        answers += await _get(mesh.client.bound["outbound"], n=2)
        assert answers == [b"HTTP/1.1 200 OK hello"] * 5
        assert mesh.connector.handshakes == 1  # pooled and reused across client connections
        assert mesh.terminator.handshakes == 1
        server_metrics = "\n".join(mesh.server.metrics.render())
        assert f'client_id="{WEB.name}"' in server_metrics
        assert 'tls="true"' in server_metrics
        client_metrics = mesh.client.metrics.render()
        outbound = [m for m in client_metrics if m.startswith("response_total{")]
        assert outbound and all(
            f'tls="true",server_id="{API.name}"' in m and 'direction="outbound"' in m
            for m in outbound
        ), outbound
        tcp_dst = [m for m in client_metrics if m.startswith("tcp_open_total{") and "dst" in m]
        assert tcp_dst and all(f'server_id="{API.name}"' in m for m in tcp_dst), tcp_dst
    finally:
        await _shutdown(mesh)


async def test_a_connection_ends_with_its_certificate_and_traffic_stops_closed(
    pki: Pki, backend: Backend
) -> None:
    # (found by the fault suite: with identity down past the certificates' lifetime, pooled
    # mTLS connections went on carrying every request on the expired certificates)
    mesh = await _pair(pki, backend, API, b_lifetime=timedelta(seconds=2))
    try:
        assert await _get(mesh.client.bound["outbound"], n=2) == [b"HTTP/1.1 200 OK hello"] * 2
        assert mesh.connector.handshakes == 1
        creds = mesh.terminator.holder.credentials
        assert creds is not None
        expired = creds.not_after.timestamp()
        await asyncio.sleep(max(0.0, expired - time.time()) + 1.2)
        # the pooled connection ended with B's certificate, on both sides; a new handshake
        # fails on the expired certificate: 502, nothing reaches the app, no plaintext
        assert (mesh.connector.expiry.expired, mesh.terminator.expiry.expired) == (1, 1)
        answers = await _get(mesh.client.bound["outbound"])
        assert answers[0].startswith(b"HTTP/1.1 502"), answers
        assert mesh.connector.handshakes == 1
        assert backend.requests == 2
        assert 'error="tls_expired"' in "\n".join(mesh.client.metrics.render())
    finally:
        await _shutdown(mesh)


async def test_an_http2_connection_drains_when_its_certificate_expires(
    pki: Pki, backend: Backend
) -> None:
    # (the expiry note of issue 14: outbound HTTP/2 was closed at once, failing the streams
    # in flight, where HTTP/1 finishes its request first)
    async with h2_backend(delay=1.5) as port:
        mesh = await _pair(pki, backend, API, backend_port=port, b_lifetime=timedelta(seconds=4))
        try:
            out = mesh.client.bound["outbound"].port
            assert (await h2_requests(out, [b"/warm"]))[0] == {1: b"/warm"}
            creds = mesh.terminator.holder.credentials
            assert creds is not None
            deadline = math.ceil(creds.not_after.timestamp())  # (ExpiryWatch's whole second)
            await asyncio.sleep(max(0.0, deadline - 0.7 - time.time()))
            # in flight when both proxies' watches fire: it finishes over the old connection
            bodies, events = await h2_requests(out, [b"/across"])
            assert time.time() > deadline
            assert bodies == {1: b"/across"}, events
            assert mesh.connector.expiry.expired == 1
            # then that connection is gone, and a new handshake fails on the expired certificate
            _, events = await h2_requests(out, [b"/after"])
            statuses = [dict(e.headers)[b":status"] for e in events if hasattr(e, "headers")]
            assert statuses == [b"502"], events
            assert mesh.connector.handshakes == 1
        finally:
            await _shutdown(mesh)


async def test_closed_inbound_tls_connections_are_let_go_of_at_once(
    pki: Pki, backend: Backend
) -> None:
    # (a closed connection the expiry watch still held kept its whole TLS state: the soak
    # grew the server-side proxy by 58.6 MiB over 50,000 handshakes)
    mesh = await _pair(pki, backend, API)
    try:
        assert await _get(mesh.client.bound["outbound"]) == [b"HTTP/1.1 200 OK hello"]
        web = TlsHolder(pki.anchors_pem, alpn=MESH_ALPN)
        web.update(issue_credentials(pki, WEB))
        context = web.client_context("http/1.1")
        for _ in range(12):  # new meshed clients, one request each, then gone
            reader, writer = await asyncio.open_connection(
                mesh.b_inbound.host, mesh.b_inbound.port, ssl=context, server_hostname=API.name
            )
            writer.write(b"GET /hello HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
            assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
            writer.close()
        assert mesh.terminator.handshakes == 13
        deadline = time.monotonic() + 5
        while len(mesh.terminator.expiry) > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(mesh.terminator.expiry) == 1  # only the pooled connection from A, still open
    finally:
        await _shutdown(mesh)


async def test_a_wrong_identity_fails_closed_and_is_counted(pki: Pki, backend: Backend) -> None:
    payments = Identity("shop", "payments")
    mesh = await _pair(pki, backend, payments)
    try:
        answers = await _get(mesh.client.bound["outbound"])
        assert answers[0].startswith(b"HTTP/1.1 502")
        assert backend.requests == 0  # nothing reached the app in plaintext
        assert mesh.connector.handshakes == 0 and mesh.terminator.handshakes == 0
        # B's proxy is not `payments`: as Linkerd's, it passes TLS naming another server to
        # its app untouched (where this handshake dies), and counts it so
        server_metrics = "\n".join(mesh.server.metrics.render())
        assert f'tls="opaque",sni="{payments.name}"' in server_metrics
    finally:
        await _shutdown(mesh)


async def test_plaintext_clients_still_reach_a_meshed_server(pki: Pki, backend: Backend) -> None:
    mesh = await _pair(pki, backend, API)
    try:
        assert await _get(mesh.b_inbound) == [b"HTTP/1.1 200 OK hello"]
        server_metrics = "\n".join(mesh.server.metrics.render())
        assert "client_id" not in server_metrics
    finally:
        await _shutdown(mesh)


async def test_a_client_from_another_trust_anchor_is_refused(pki: Pki, backend: Backend) -> None:
    mesh = await _pair(pki, backend, API)
    foreign = Pki.make()
    stranger = TlsHolder(pki.anchors_pem)  # trusts us, but holds a foreign certificate
    stranger.update(issue_credentials(foreign, WEB))
    try:
        ssl_ctx = stranger.client_context("http/1.1")
        reader, writer = await asyncio.open_connection(
            mesh.b_inbound.host, mesh.b_inbound.port, ssl=ssl_ctx, server_hostname=API.name
        )
        writer.write(b"GET /hello HTTP/1.1\r\nHost: api\r\n\r\n")
        data = b""
        try:
            data = await asyncio.wait_for(reader.read(100), 5)
        except (ConnectionError, OSError):
            pass
        writer.close()
        assert data == b""
        for _ in range(100):
            if mesh.terminator.failures:
                break
            await asyncio.sleep(0.01)
        assert mesh.terminator.failures == {"unknown_ca": 1}
        assert backend.requests == 0
        assert 'error="tls_unknown_ca"' in "\n".join(mesh.server.metrics.render())
    finally:
        await _shutdown(mesh)


async def test_http2_is_carried_with_the_h2_alpn_stream_by_stream(
    pki: Pki, backend: Backend
) -> None:
    async with h2_backend() as port:
        mesh = await _pair(pki, backend, API, backend_port=port)
        try:
            bodies, _ = await h2_requests(mesh.client.bound["outbound"].port, [b"/x", b"/y"])
            assert sorted(bodies.values()) == [b"/x", b"/y"]
            # B served a decrypted connection whose ALPN was h2 with its HTTP/2 server
            served = [c for c in mesh.server.sides[0].conns.values() if isinstance(c, H2Server)]
            assert served and served[0].transport is not None
            ssl_object = served[0].transport.get_extra_info("ssl_object")
            assert ssl_object.selected_alpn_protocol() == "h2"
            # the per-client side shares the inbound side's HTTP/2 pool to the app (swept and
            # closed at shutdown with it), though h2 was loaded only when this connection came
            assert served[0].pool is mesh.server.sides[0].mux_pool
            lines = mesh.server.metrics.render()
            counted = [ln for ln in lines if ln.startswith("request_total") and WEB.name in ln]
            assert counted and counted[0].endswith(" 2")
        finally:
            await _shutdown(mesh)


async def test_opaque_tcp_is_carried_with_the_opaque_alpn(pki: Pki, backend: Backend) -> None:
    mesh = await _pair(pki, backend, API, opaque=True)
    try:
        assert await _get(mesh.client.bound["outbound"]) == [b"HTTP/1.1 200 OK hello"]
        lines = mesh.server.metrics.render()
        tcp = [ln for ln in lines if ln.startswith("tcp_open_total") and WEB.name in ln]
        assert tcp and tcp[0].endswith(" 1")  # relayed as TCP with the client's identity...
        http = [ln for ln in lines if ln.startswith("request_total") and WEB.name in ln]
        assert http == []  # ...and never parsed as HTTP: ALPN said opaque
    finally:
        await _shutdown(mesh)


@dataclass
class TlsApp:
    """The app in B's pod is itself a TLS server (a webhook's shape: its own CA and cert)."""

    ca_pem: str
    cert_der: bytes
    server: asyncio.Server
    seen_sni: list[str | None]

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def tls_app(tmp_path: Path) -> AsyncIterator[TlsApp]:
    ca = generate_webhook_ca()
    serving = generate_serving_certificate(ca, "lacewing-proxy-injector", "lacewing")
    (tmp_path / "tls.crt").write_text(serving.cert_pem)
    (tmp_path / "tls.key").write_text(key_to_pem(serving.private_key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    seen: list[str | None] = []
    context.sni_callback = lambda _obj, name, _ctx: seen.append(name)  # type: ignore[func-returns-value]

    async def greet_and_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"app says hi\n")
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(1024):
                writer.write(data)
        writer.close()

    server = await asyncio.start_server(greet_and_echo, "127.0.0.1", 0, ssl=context)
    der = serving.certificate.public_bytes(serialization.Encoding.DER)
    try:
        yield TlsApp(ca.cert_pem, der, server, seen)
    finally:
        server.close()
        await server.wait_closed()


async def _tls_to_app(addr: Addr, app: TlsApp, server_name: str | None) -> tuple[bytes, bytes]:
    """A TLS client that trusts only the app's CA: (the certificate it got, what it read)."""
    context = ssl.create_default_context(cadata=app.ca_pem)
    context.check_hostname = server_name is not None
    reader, writer = await asyncio.open_connection(
        addr.host, addr.port, ssl=context, server_hostname=server_name or ""
    )
    try:
        greeting = await asyncio.wait_for(reader.readline(), 5)
        writer.write(b"ping\n")
        echo = await asyncio.wait_for(reader.readline(), 5)
        peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return peer, greeting + echo


async def test_tls_for_the_app_passes_through_untouched(pki: Pki, tls_app: TlsApp) -> None:
    holder = TlsHolder(pki.anchors_pem, alpn=MESH_ALPN)
    holder.update(issue_credentials(pki, API))
    server = ProxyServer(_config(inbound_fixed_dst=f"127.0.0.1:{tls_app.port}"))  # type: ignore[arg-type]
    terminator = MeshTlsTerminator(holder)
    server.sides[0].tls_terminator = terminator
    await server.start()
    try:
        inbound = server.bound["inbound"]
        webhook = "lacewing-proxy-injector.lacewing.svc"
        for name in (webhook, None):
            peer, said = await _tls_to_app(inbound, tls_app, name)
            assert peer == tls_app.cert_der  # the app's own certificate, not the proxy's
            assert said == b"app says hi\nping\n"
        assert tls_app.seen_sni == [webhook, None]
        assert terminator.handshakes == 0 and terminator.passthrough == 2
        samples = parse("\n".join(server.metrics.render()))
        src = {"direction": "inbound", "peer": "src", "target_addr": f"127.0.0.1:{tls_app.port}"}
        opaque = {"tls": "opaque", "sni": webhook}
        no_sni = {"tls": "no_identity", "no_tls_reason": "no_tls_from_remote"}
        assert samples.get_value("tcp_open_total", **src, **opaque) == 1
        assert samples.get_value("tcp_open_total", **src, **no_sni) == 1
        assert not [key for key in samples if ("tls", "true") in key[1]]
    finally:
        await server.shutdown()
