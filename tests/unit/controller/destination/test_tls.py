"""Over mTLS: a proxy with a mesh identity reads the stream; a client without one is refused."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from tests.unit.controller.identity.running import identity_server
from tests.unit.proxy.identity.pki import Pki, issue_credentials

from lacewing.controller.destination import Backend, DestinationServer, Directory, Hub, Service
from lacewing.controller.destination.directory import ServicePort
from lacewing.controller.destination.tls import serving_context
from lacewing.core.identity import DESTINATION_SERVICE_ACCOUNT, Identity
from lacewing.errors import IdentityError
from lacewing.proxy.discovery import DestinationClient
from lacewing.proxy.identity.credentials import client_context

__all__ = ["identity_server"]  # the fixture


async def test_mutual_tls_stream(tmp_path: Path) -> None:
    pki = Pki.make()
    anchors = tmp_path / "ca.crt"
    anchors.write_text(pki.anchors_pem)
    # 67 characters: longer than a common name may be, so it lives in the SANs only.
    server_id = Identity("lacewing", DESTINATION_SERVICE_ACCOUNT)
    context = serving_context(pki.write_issuer_dir(tmp_path / "issuer"), anchors, server_id)
    hub = Hub()
    web = Service("web", "shop", None, (ServicePort(80, 8080),), (Backend("10.42.0.1"),))
    hub.publish(Directory((web,)))
    server = DestinationServer(hub, "127.0.0.1", 0, ssl_context=context)
    await server.start()
    proxy = issue_credentials(pki, pki.identity("shop", "web"))
    anchors_pem = pki.anchors_pem
    contexts: list[ssl.SSLContext | None] = [None]  # no certificate yet at the first attempt
    client = DestinationClient(
        "127.0.0.1",
        server.bound_port,
        ssl_context=lambda: contexts.pop(0) if contexts else client_context(proxy, anchors_pem),
        server_hostname=server_id.name,
        namespace="shop",
        backoff_first=0.05,
    )
    try:
        resolution = client.resolve("web:80")
        assert await resolution.first_answer(3.0)
        assert [e.address for e in resolution.endpoint_list()] == ["10.42.0.1"]
        assert client.connects == 1 and not contexts  # it waited for a certificate

        anonymous = ssl.create_default_context(cadata=pki.anchors_pem)
        anonymous.check_hostname = False
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", server.bound_port, ssl=anonymous
            )
            writer.write(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            if not await reader.readline():
                raise ConnectionError("closed without an answer")
    finally:
        await client.close()
        await server.stop()


async def test_certificate_from_the_identity_service(identity_server: Any, tmp_path: Path) -> None:
    """As install runs it: a CSR and destination's token to identity, never the issuer key."""
    from tests.unit.controller.identity.running import KEY

    from lacewing.controller.destination.tls import IdentityCertified
    from lacewing.core.identity import identity_service_name, mint_local_token

    pki = identity_server.pki
    anchors = tmp_path / "ca.crt"
    anchors.write_text(pki.anchors_pem)
    token = tmp_path / "token"
    token.write_text(mint_local_token(KEY, "lacewing", DESTINATION_SERVICE_ACCOUNT))
    server_id = Identity("lacewing", DESTINATION_SERVICE_ACCOUNT)
    certified = IdentityCertified(
        server_id,
        ("127.0.0.1", identity_server.server.bound_port),
        identity_service_name("lacewing", "cluster.local"),
        token,
        anchors,
    )
    context = await certified.start()
    hub = Hub()
    web = Service("web", "shop", None, (ServicePort(80, 8080),), (Backend("10.42.0.1"),))
    hub.publish(Directory((web,)))
    server = DestinationServer(hub, "127.0.0.1", 0, ssl_context=context)
    await server.start()
    proxy = issue_credentials(pki, pki.identity("shop", "web"))
    client = DestinationClient(
        "127.0.0.1",
        server.bound_port,
        ssl_context=client_context(proxy, pki.anchors_pem),
        server_hostname=server_id.name,
        namespace="shop",
    )
    try:
        resolution = client.resolve("web:80")
        assert await resolution.first_answer(3.0)
        assert [e.address for e in resolution.endpoint_list()] == ["10.42.0.1"]
        assert certified.manager.refresh_count == 1  # issued by the identity service
        assert (
            server_id.name
            == "lacewing-destination.lacewing.serviceaccount.identity.lacewing.cluster.local"
        )
        token.write_text("v1:lacewing:lacewing-destination:forged")  # a bad token is refused
        with pytest.raises(IdentityError, match="signature"):
            await certified.manager.refresh()
    finally:
        await client.close()
        await server.stop()
        await certified.stop()
