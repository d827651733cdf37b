"""An opaque port on a meshed proxy's inbound side: mesh TLS is still terminated.

    client --> proxy A outbound --mTLS (opaque ALPN)--> proxy B inbound, port opaque --> app

B lists the app's port in its own LACEWING_PROXY_OPAQUE_PORTS (as the local runtime and
Kubernetes annotations do for a database). The app must get the client's plain bytes, not the
TLS records, and B must know the client's identity (which inbound policy decides on); an
unmeshed client of a server-speaks-first app on that port still gets the greeting, after at
most the short wait in which B looks for a ClientHello.
"""

from __future__ import annotations

import asyncio
import time

from tests.unit.proxy.identity.pki import Pki, issue_credentials
from tests.unit.proxy.identity.test_mesh import API, WEB, _config
from tests.unit.proxy.sockets.test_opaque import echo_server

from lacewing.proxy.accept import OPAQUE_TLS_SNIFF
from lacewing.proxy.identity.holder import TlsHolder
from lacewing.proxy.identity.mtls import MESH_ALPN, MeshTlsConnector, MeshTlsTerminator
from lacewing.proxy.server import ProxyServer
from lacewing.proxy.transport import PlainConnector


async def test_mesh_tls_on_an_opaque_inbound_port_is_terminated_and_a_server_may_speak_first() -> (
    None
):
    pki = Pki.make()
    async with echo_server(b"220 ready\r\n") as app_port:
        b_holder = TlsHolder(pki.anchors_pem, alpn=MESH_ALPN)
        b_holder.update(issue_credentials(pki, API))
        server = ProxyServer(_config(inbound_fixed_dst=f"127.0.0.1:{app_port}",  # type: ignore[arg-type]
                                     opaque_ports=str(app_port)))  # fmt: skip
        server.sides[0].tls_terminator = MeshTlsTerminator(b_holder)
        await server.start()
        b_inbound = server.bound["inbound"]
        a_holder = TlsHolder(pki.anchors_pem, alpn=MESH_ALPN)
        a_holder.update(issue_credentials(pki, WEB))
        connector = MeshTlsConnector(a_holder, lambda addr: API if addr == b_inbound else None,
                                     PlainConnector(1.0), timeout=2.0)  # fmt: skip
        client = ProxyServer(
            _config(outbound_fixed_dst=str(b_inbound), opaque_ports=str(b_inbound.port)),  # type: ignore[arg-type]
            connector=connector,
        )
        await client.start()
        try:
            # meshed: A -> B over mTLS; the app greets, then echoes the plain bytes
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", client.bound["outbound"].port
            )
            async with asyncio.timeout(5):
                assert await reader.readuntil(b"\r\n") == b"220 ready\r\n"
                writer.write(b"HELO x\r\n")
                assert await reader.readuntil(b"\r\n") == b"HELO x\r\n"
            writer.close()
            opened = [m for m in server.metrics.render()
                      if m.startswith("tcp_open_total") and WEB.name in m]  # fmt: skip
            assert opened and opened[0].endswith(" 1"), server.metrics.render()
            # unmeshed, straight to B: the app speaks first, after B's short look for TLS
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", b_inbound.port)
            async with asyncio.timeout(5):
                assert await reader.readuntil(b"\r\n") == b"220 ready\r\n"
            waited = time.monotonic() - started
            assert waited < OPAQUE_TLS_SNIFF + 0.5, waited
            writer.close()
        finally:
            await client.shutdown()
            await server.shutdown()
