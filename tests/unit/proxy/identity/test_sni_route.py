"""Inbound TLS routed on its server name, with in-memory transports (no sockets).

A connection is accepted by the inbound side's `Accepted` (fixed original destination), TLS
is detected and handed to a real `MeshTlsTerminator`; the upstream connector is a fake that
records where it dialled and hands back a `FakeTransport`. Termination is real: the
terminator's TLS protocol answers a ClientHello naming this proxy with a ServerHello.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from tests.unit.proxy.identity.pki import Pki, issue_credentials
from tests.unit.proxy.identity.test_clienthello import real_hello

from lacewing.core.identity import Identity
from lacewing.proxy.accept import Accepted
from lacewing.proxy.config import Addr, load
from lacewing.proxy.identity.clienthello import NEED_MORE, ClientHello, NotTls
from lacewing.proxy.identity.holder import TlsHolder
from lacewing.proxy.identity.mtls import (
    MAX_SNI_LABELS,
    MESH_ALPN,
    SNI_OVERFLOW,
    TLS_DETECT_TIMEOUT,
    TLS_NO_CLIENT_HELLO,
    MeshTlsTerminator,
    inbound_tls_route,
    passthru_labels,
)
from lacewing.proxy.metrics import ProxyMetrics
from lacewing.proxy.metrics.proxy import TlsLabels
from lacewing.proxy.server import build_sides
from lacewing.proxy.side import Side
from lacewing.proxy.tcp import TunnelEnd
from lacewing.proxy.transport.fake import FakeTransport

API = Identity("shop", "api")
APP = Addr("127.0.0.1", 9443)
P = TypeVar("P", bound=asyncio.BaseProtocol)


# -- the decision alone ------------------------------------------------------------------


def test_own_name_terminates_and_everything_else_passes_through() -> None:
    me = API.name
    assert inbound_tls_route(ClientHello(me, ("http/1.1",)), me) is None
    assert inbound_tls_route(ClientHello(me.upper(), ()), me) is None  # DNS is caseless
    assert inbound_tls_route(ClientHello("webhook.lacewing.svc", ()), me) == (
        ("tls", "opaque"),
        ("sni", "webhook.lacewing.svc"),
    )
    assert inbound_tls_route(ClientHello(None, ("h2",)), me) == (
        ("tls", "no_identity"),
        ("no_tls_reason", "no_tls_from_remote"),
    )
    assert inbound_tls_route(NotTls("record type 23"), me) == TLS_NO_CLIENT_HELLO
    assert inbound_tls_route(NEED_MORE, me) == (
        ("tls", "no_identity"),
        ("no_tls_reason", "detect_timeout"),
    )
    # a proxy that does not know its name yet terminates nothing
    assert inbound_tls_route(ClientHello(me, ()), None) == passthru_labels(me)
    # dialled at the proxy's own port: for the proxy, whatever the name
    for result in (ClientHello(None, ()), ClientHello("other", ()), NotTls("x"), NEED_MORE):
        assert inbound_tls_route(result, me, to_proxy=True) is None


# -- the driver on fake transports -------------------------------------------------------


@dataclass
class FakeConnector:
    dialled: list[Addr] = field(default_factory=list)
    upstreams: list[FakeTransport] = field(default_factory=list)

    async def connect(self, addr: Addr, factory: Callable[[], P]) -> tuple[asyncio.Transport, P]:
        self.dialled.append(addr)
        protocol = factory()
        transport = FakeTransport(protocol)
        protocol.connection_made(transport)
        self.upstreams.append(transport)
        return transport, protocol

    def labels_for(self, addr: Addr) -> TlsLabels | None:
        return None


@dataclass
class Inbound:
    side: Side
    connector: FakeConnector
    terminator: MeshTlsTerminator

    def accept(self, dst: Addr = APP) -> FakeTransport:
        self.side.fixed_dst = dst
        accepted = Accepted(self.side)
        transport = FakeTransport(accepted)
        accepted.connection_made(transport)
        return transport

    def tcp_open(self, tls: TlsLabels) -> int:
        stats = self.side.metrics.tcp.get(("inbound", "src", str(APP), tls))
        return stats.opened if stats else 0


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.make()


def _inbound(pki: Pki, *, certificate: bool = True, detect_timeout: str = "10s") -> Inbound:
    config = load(
        {
            "LACEWING_PROXY_INBOUND_FIXED_DST": str(APP),
            "LACEWING_PROXY_DETECT_TIMEOUT": detect_timeout,
        }
    )
    connector = FakeConnector()
    side, _ = build_sides(config, ProxyMetrics(), connector)  # type: ignore[arg-type]
    holder = TlsHolder(pki.anchors_pem, alpn=MESH_ALPN)
    if certificate:
        holder.update(issue_credentials(pki, API))
    terminator = MeshTlsTerminator(holder, local_identity=API)
    side.tls_terminator = terminator
    return Inbound(side, connector, terminator)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_hello_naming_this_proxy_is_terminated_here(pki: Pki) -> None:
    inbound = _inbound(pki)
    client = inbound.accept()
    client.protocol.data_received(real_hello(API.name, ["http/1.1"]))  # type: ignore[union-attr]
    await _settle()
    assert inbound.connector.dialled == []  # nothing went to the app
    server_flight = client.data()
    assert server_flight[:3] == b"\x16\x03\x03", "the proxy answers with its own ServerHello"
    assert not isinstance(client.protocol, TunnelEnd)
    assert inbound.terminator.passthrough == 0
    client.abort()


INJECTOR = "lacewing-proxy-injector.lacewing.svc"
WEB_NAME = "web.shop.serviceaccount.identity.lacewing.cluster.local"


@pytest.mark.parametrize(
    ("server_hostname", "labels"),
    [
        (INJECTOR, passthru_labels(INJECTOR)),
        (WEB_NAME, passthru_labels(WEB_NAME)),  # another proxy's name: not ours to terminate
        (None, TLS_NO_CLIENT_HELLO),
    ],
)
async def test_other_tls_is_relayed_untouched_to_the_app(
    pki: Pki, server_hostname: str | None, labels: TlsLabels
) -> None:
    inbound = _inbound(pki)
    client = inbound.accept()
    hello = real_hello(server_hostname, ["h2", "http/1.1"])
    client.protocol.data_received(hello[:7])  # type: ignore[union-attr]
    await _settle()
    assert inbound.connector.dialled == []  # still reading the ClientHello
    client.protocol.data_received(hello[7:])  # type: ignore[union-attr]
    await _settle()
    assert inbound.connector.dialled == [APP]
    app = inbound.connector.upstreams[0]
    assert app.data() == hello  # every byte read so far, replayed, unchanged
    assert isinstance(client.protocol, TunnelEnd)
    client.protocol.data_received(b"\x17\x03\x03 more")
    app.protocol.data_received(b"\x16\x03\x03 the app's ServerHello")  # type: ignore[union-attr]
    assert app.data() == hello + b"\x17\x03\x03 more"
    assert client.data() == b"\x16\x03\x03 the app's ServerHello"
    assert inbound.tcp_open(labels) == 1
    assert inbound.tcp_open((("tls", "disabled"),)) == 0  # counted once, under its route
    client.close()
    assert inbound.side.metrics.tcp[("inbound", "src", str(APP), labels)].closed == 1


async def test_tls_that_is_not_a_client_hello_is_relayed(pki: Pki) -> None:
    inbound = _inbound(pki)
    client = inbound.accept()
    data = b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00"  # a ServerHello from a client: nonsense
    client.protocol.data_received(data)  # type: ignore[union-attr]
    await _settle()
    assert inbound.connector.upstreams[0].data() == data
    assert inbound.tcp_open(TLS_NO_CLIENT_HELLO) == 1


async def test_a_client_hello_that_never_completes_is_relayed_after_the_detect_timeout(
    pki: Pki,
) -> None:
    inbound = _inbound(pki, detect_timeout="50ms")
    client = inbound.accept()
    partial = real_hello(API.name)[:40]
    client.protocol.data_received(partial)  # type: ignore[union-attr]
    await asyncio.sleep(0.02)
    assert inbound.connector.dialled == []
    await asyncio.sleep(0.1)
    await _settle()
    assert inbound.connector.upstreams[0].data() == partial
    assert inbound.tcp_open(TLS_DETECT_TIMEOUT) == 1


async def test_an_end_of_stream_inside_the_hello_relays_it_and_passes_the_eof(pki: Pki) -> None:
    inbound = _inbound(pki)
    client = inbound.accept()
    partial = real_hello(API.name)[:40]
    client.protocol.data_received(partial)  # type: ignore[union-attr]
    assert client.protocol.eof_received() is True  # type: ignore[union-attr]
    await _settle()
    app = inbound.connector.upstreams[0]
    assert app.data() == partial and app.eof_written
    assert inbound.tcp_open(TLS_NO_CLIENT_HELLO) == 1


async def test_a_connection_lost_while_reading_the_hello_leaves_nothing_behind(pki: Pki) -> None:
    inbound = _inbound(pki)
    client = inbound.accept()
    client.protocol.data_received(b"\x16\x03\x01\x01")  # type: ignore[union-attr]
    await _settle()
    assert client in inbound.side.conns
    client.close()
    assert client not in inbound.side.conns
    assert inbound.connector.dialled == []
    assert all(s.opened == 0 for s in inbound.side.metrics.tcp.values())


async def test_a_proxy_still_waiting_for_its_certificate_refuses_its_own_name(pki: Pki) -> None:
    # The name comes from configuration: mesh TLS for this proxy is never handed to the app.
    inbound = _inbound(pki, certificate=False)
    client = inbound.accept()
    client.protocol.data_received(real_hello(API.name))  # type: ignore[union-attr]
    await _settle()
    assert inbound.connector.dialled == []
    assert client.closed
    assert inbound.terminator.failures == {"handshake": 1}


async def test_tls_dialled_at_the_proxys_own_port_is_terminated_never_relayed(pki: Pki) -> None:
    inbound = _inbound(pki)
    own_port = inbound.side.config.inbound_listen_addr.port
    client = inbound.accept(Addr("10.42.0.7", own_port))
    client.protocol.data_received(real_hello(None))  # type: ignore[union-attr]
    await _settle()
    assert inbound.connector.dialled == []  # relaying would dial 127.0.0.1:4143: itself
    assert client.data()[:3] == b"\x16\x03\x03"  # the proxy's ServerHello and certificate
    client.abort()


async def test_sni_label_values_are_bounded(pki: Pki) -> None:
    inbound = _inbound(pki)
    for i in range(MAX_SNI_LABELS + 5):
        client = inbound.accept()
        client.protocol.data_received(real_hello(f"name-{i}.example"))  # type: ignore[union-attr]
    await _settle()
    assert inbound.terminator.passthrough == MAX_SNI_LABELS + 5
    snis = {dict(key[3])["sni"] for key in inbound.side.metrics.tcp if "sni" in dict(key[3])}
    assert len(snis) == MAX_SNI_LABELS + 1
    assert inbound.tcp_open(passthru_labels(SNI_OVERFLOW)) == 5


def test_the_ssl_module_makes_the_hellos_these_tests_use() -> None:
    assert real_hello("a.example")[:1] == b"\x16" and ssl.HAS_SNI
