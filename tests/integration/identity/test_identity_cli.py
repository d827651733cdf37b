"""`lacewing identity`: the certificate a meshed proxy presents, fetched over real TLS."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from tests.unit.proxy.identity.pki import Pki, issue_credentials

from lacewing.cli.commands.identity import IdentityOptions, render_certificate, run
from lacewing.cli.context import GlobalOptions, Output
from lacewing.core.identity import Identity
from lacewing.errors import UsageError
from lacewing.proxy.identity.holder import TlsHolder

API = Identity("shop", "api")
DATA = Path(__file__).parent / "data"


def test_the_rendering_of_a_leaf(golden: Callable[[str, str], None]) -> None:
    pem = (DATA / "api-leaf.pem").read_text()
    golden(
        "identity/api-leaf.txt", "\n".join(render_certificate(pem, "yes, against ca.crt")) + "\n"
    )


@pytest.fixture
async def meshed_listener() -> AsyncIterator[tuple[str, Pki]]:
    pki = Pki.make()
    holder = TlsHolder(pki.anchors_pem)
    holder.update(issue_credentials(pki, API))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=holder.listener_context())
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}", pki
    finally:
        server.close()
        await server.wait_closed()


async def _run(options: IdentityOptions) -> tuple[int, str]:
    buffer = io.StringIO()
    code = await asyncio.to_thread(run, options, GlobalOptions(), Output(out=buffer, err=buffer))
    return code, buffer.getvalue()


async def test_shows_and_verifies_a_live_proxys_certificate(
    meshed_listener: tuple[str, Pki], tmp_path: Path
) -> None:
    target, pki = meshed_listener
    anchors = tmp_path / "ca.crt"
    anchors.write_text(pki.anchors_pem)
    code, text = await _run(IdentityOptions((target,), anchors))
    assert code == 0
    assert text.startswith(f"TARGET {target} (1 of 1)\n\nIdentity:   {API.name}\n")
    assert f"Verified:   yes, against {anchors}" in text
    assert "-----BEGIN CERTIFICATE-----" in text


async def test_foreign_anchors_and_dead_targets_fail_with_one_line_each(
    meshed_listener: tuple[str, Pki], tmp_path: Path
) -> None:
    target, _ = meshed_listener
    foreign = tmp_path / "foreign.crt"
    foreign.write_text(Pki.make().anchors_pem)
    code, text = await _run(IdentityOptions((target, "127.0.0.1:1"), foreign))
    assert code == 1
    errors = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(errors) == 2
    assert "does not verify" in errors[0] and "cannot get a certificate" in errors[1]
    assert "TARGET 127.0.0.1:1 (2 of 2)" in text
    with pytest.raises(UsageError, match="not host:port"):
        await _run(IdentityOptions(("nonsense",)))
