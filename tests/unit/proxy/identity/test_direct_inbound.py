"""A connection dialled straight to a meshed proxy's inbound port (no SO_ORIGINAL_DST).

`lacewing identity POD_IP:4143` does this: the proxy must answer the TLS handshake with its
certificate instead of closing the connection as `no_original_dst`; plaintext to the same
port gets no answer and is never forwarded anywhere.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from tests.unit.controller.identity.running import RunningIdentity
from tests.unit.proxy.identity.test_sidecar import WEB, _identity, _proxy_config

from lacewing.cli.commands.identity import IdentityOptions, run
from lacewing.cli.context import GlobalOptions, Output
from lacewing.proxy.identity.sidecar import MeshedProxyServer


def _errors(proxy: MeshedProxyServer) -> str:
    return "\n".join(line for line in proxy.render_metrics() if "tcp_errors_total" in line)


async def test_lacewing_identity_against_the_inbound_port_shows_the_proxy_certificate(
    identity_server: RunningIdentity, tmp_path: Path
) -> None:
    proxy = MeshedProxyServer(_proxy_config(), _identity(identity_server, tmp_path))  # type: ignore[arg-type]
    await proxy.start()
    try:
        inbound = proxy.bound["inbound"]
        anchors = tmp_path / "ca.crt"
        anchors.write_text(identity_server.pki.anchors_pem)
        printed, errors = io.StringIO(), io.StringIO()
        options = IdentityOptions((str(inbound),), anchors, 5.0)
        code = await asyncio.to_thread(run, options, GlobalOptions(), Output(printed, errors))
        text = printed.getvalue()
        assert code == 0, text
        assert f"Identity: {WEB.name}" in " ".join(text.split()), text
        assert "yes, against" in text
        creds = proxy.holder.credentials
        assert creds is not None
        assert creds.leaf.strip() in text  # the PEM the proxy holds
        assert 'error="no_original_dst"' not in _errors(proxy)
    finally:
        await proxy.shutdown()


async def test_plaintext_straight_to_the_inbound_port_is_not_forwarded(
    identity_server: RunningIdentity, tmp_path: Path
) -> None:
    proxy = MeshedProxyServer(_proxy_config(), _identity(identity_server, tmp_path))  # type: ignore[arg-type]
    await proxy.start()
    try:
        inbound = proxy.bound["inbound"]
        reader, writer = await asyncio.open_connection(inbound.host, inbound.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        # a TLS alert at most, never an HTTP answer from somewhere
        assert not answer.startswith(b"HTTP/")
        for _ in range(100):
            if 'error="tls_' in _errors(proxy):
                break
            await asyncio.sleep(0.02)
        assert 'error="tls_' in _errors(proxy)
    finally:
        await proxy.shutdown()
