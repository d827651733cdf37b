"""Mutual TLS between two proxies' contexts over real loopback sockets.

Server side: a listener built from `TlsHolder.listener_context()` (as the inbound proxy
would); client side: `TlsHolder.client_context()` with the expected identity as server name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from tests.unit.proxy.identity.pki import Pki, issue_credentials

from lacewing.core.identity import Identity
from lacewing.errors import CertificateError
from lacewing.proxy.identity.holder import TlsHolder
from lacewing.proxy.identity.verify import expect_peer, peer_identity, tls_failure_reason

WEB = Identity("shop", "web")
API = Identity("shop", "api")


@dataclass
class Echo:
    """An inbound-like TLS echo server that records each client's identity and failures."""

    holder: TlsHolder
    server: asyncio.Server | None = None
    clients: list[Identity | None] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            # As the inbound proxy does after detecting a ClientHello: upgrade in place.
            await writer.start_tls(self.holder.listener_context())
        except (ssl.SSLError, ConnectionError) as exc:
            self.failures.append(tls_failure_reason(exc))
            writer.close()
            self.handlers.discard(task)
            return
        self.clients.append(peer_identity(writer))
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            self.handlers.discard(task)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.make(now=datetime.now(UTC) - timedelta(days=2))  # old enough to sign stale leaves


@pytest.fixture
async def api_server(pki: Pki) -> AsyncIterator[Echo]:
    holder = TlsHolder(pki.anchors_pem, alpn=["http/1.1", "h2"])
    holder.update(issue_credentials(pki, API))
    echo = Echo(holder)
    echo.server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    try:
        yield echo
    finally:
        echo.server.close()
        for task in list(echo.handlers):
            task.cancel()
        await asyncio.gather(*echo.handlers, return_exceptions=True)
        await echo.server.wait_closed()


def _client(pki: Pki, identity: Identity = WEB, alpn: tuple[str, ...] = ("h2",)) -> TlsHolder:
    holder = TlsHolder(pki.anchors_pem, alpn=alpn)
    holder.update(issue_credentials(pki, identity))
    return holder


async def _dial(
    server: Echo, client: TlsHolder, expected: Identity
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=client.client_context(), server_hostname=expected.name
    )


async def _roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), 5)


async def _wait_for(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()


async def test_both_sides_learn_each_others_identity_and_alpn(pki: Pki, api_server: Echo) -> None:
    reader, writer = await _dial(api_server, _client(pki), API)
    try:
        assert await _roundtrip(reader, writer, b"hello") == b"hello"
        assert expect_peer(writer, API) == API
        assert api_server.clients == [WEB]
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
        with pytest.raises(CertificateError, match=r"expected web\.shop"):
            expect_peer(writer, WEB)
    finally:
        await _close(writer)


async def test_the_listener_sends_no_session_tickets(pki: Pki, api_server: Echo) -> None:
    # nobody resumes sessions between proxies: a ticket would be work and memory for nothing
    reader, writer = await _dial(api_server, _client(pki), API)
    try:
        assert await _roundtrip(reader, writer, b"hello") == b"hello"  # tickets come by now
        session = writer.get_extra_info("ssl_object").session
        assert session is None or not session.has_ticket
    finally:
        await _close(writer)


async def test_a_peer_with_the_wrong_identity_fails_the_handshake(
    pki: Pki, api_server: Echo
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        await _dial(api_server, _client(pki), Identity("shop", "payments"))
    assert tls_failure_reason(info.value) == "wrong_identity"


async def test_a_foreign_trust_anchor_is_refused_both_ways(pki: Pki, api_server: Echo) -> None:
    foreign = Pki.make()
    # The foreign client cannot verify our server...
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        await _dial(api_server, _client(foreign), API)
    assert tls_failure_reason(info.value) == "unknown_ca"
    # ...and a client that trusts our anchor but holds a foreign certificate is refused.
    mixed = TlsHolder(pki.anchors_pem)
    mixed.update(issue_credentials(foreign, WEB))
    reader, writer = await _dial(api_server, mixed, API)  # TLS 1.3: refusal comes after
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)) as refused:
        await _roundtrip(reader, writer, b"x")
    await _close(writer)
    del refused
    # (the first, client-side refusal shows here as a reset: "handshake")
    await _wait_for(lambda: sorted(api_server.failures) == ["handshake", "unknown_ca"])
    assert api_server.clients == []


async def test_a_client_without_a_certificate_is_refused(pki: Pki, api_server: Echo) -> None:
    context = ssl.create_default_context(cadata=pki.anchors_pem)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", api_server.port, ssl=context, server_hostname=API.name
    )
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        await _roundtrip(reader, writer, b"x")
    await _close(writer)
    await _wait_for(lambda: api_server.failures == ["no_client_cert"])
    assert api_server.clients == []


async def test_an_expired_certificate_is_refused(pki: Pki, api_server: Echo) -> None:
    stale = TlsHolder(pki.anchors_pem)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    stale.update(issue_credentials(pki, WEB, now=long_ago, lifetime=timedelta(hours=1)))
    reader, writer = await _dial(api_server, stale, API)
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)) as refused:
        await _roundtrip(reader, writer, b"x")
    await _close(writer)
    del refused
    await _wait_for(lambda: api_server.failures == ["expired"])


async def test_open_connections_survive_a_context_swap(pki: Pki, api_server: Echo) -> None:
    client = _client(pki)
    reader, writer = await _dial(api_server, client, API)
    old_serial = writer.get_extra_info("ssl_object").getpeercert(binary_form=False)["serialNumber"]
    try:
        assert await _roundtrip(reader, writer, b"before") == b"before"
        api_server.holder.update(issue_credentials(pki, API))  # the server renews
        client.update(issue_credentials(pki, WEB))  # and so does the client
        assert await _roundtrip(reader, writer, b"after the swap") == b"after the swap"

        reader2, writer2 = await _dial(api_server, client, API)
        try:
            assert await _roundtrip(reader2, writer2, b"new") == b"new"
            new_serial = writer2.get_extra_info("ssl_object").getpeercert()["serialNumber"]
            assert new_serial != old_serial  # the new handshake saw the renewed certificate
        finally:
            await _close(writer2)
        assert await _roundtrip(reader, writer, b"still here") == b"still here"
    finally:
        await _close(writer)
    assert api_server.holder.swaps == 2


async def test_a_holder_without_a_certificate_refuses_to_dial() -> None:
    with pytest.raises(CertificateError, match="no certificate yet"):
        TlsHolder("").client_context()


def test_inbound_termination_uses_uvloops_compiled_tls_on_uvloop_and_asyncios_elsewhere() -> None:
    import uvloop

    from lacewing.proxy.identity.mtls import tls_protocol_for

    on_uvloop, on_asyncio = uvloop.new_event_loop(), asyncio.new_event_loop()
    try:
        on_uv = tls_protocol_for(on_uvloop)
        assert isinstance(on_uv, type) and issubclass(on_uv, uvloop.loop.SSLProtocol)  # type: ignore[attr-defined]
        chosen = tls_protocol_for(on_asyncio)
        assert isinstance(chosen, type) and issubclass(chosen, asyncio.sslproto.SSLProtocol)
    finally:
        on_uvloop.close()
        on_asyncio.close()
