"""Trust-anchor rotation with overlap, on two TLS holders reading one bundle file each.

The procedure of docs/identity.md, step by step, with the bundle files rewritten as an
operator (or kubelet) would: old anchor -> old + new -> issuer re-signed by the new anchor
-> new only. An established connection survives every step; after the last, a peer whose
certificate chains only to the old anchor is refused, in both directions.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.unit.proxy.identity.pki import Pki, issue_credentials
from tests.unit.proxy.identity.test_mtls import API, WEB, Echo, _close, _dial, _roundtrip

from lacewing.proxy.identity.holder import TlsHolder
from lacewing.tls.bundle import TrustBundle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".new")
    tmp.write_text(text)
    tmp.rename(path)  # as the local runtime and kubelet do: never half-written


@pytest.fixture
def old() -> Pki:
    return Pki.make(now=datetime.now(UTC) - timedelta(days=1))


@pytest.fixture
def new() -> Pki:
    return Pki.make(now=datetime.now(UTC) - timedelta(days=1))


async def _server(holder: TlsHolder) -> AsyncIterator[Echo]:
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


async def test_rotation_with_overlap_keeps_connections_and_then_refuses_the_old_anchor(
    old: Pki, new: Pki, tmp_path: Path
) -> None:
    clock = Clock()
    files = {name: tmp_path / f"{name}.crt" for name in ("server", "client")}
    for f in files.values():
        f.write_text(old.anchors_pem)
    bundles = {n: TrustBundle.from_file(f, clock=clock) for n, f in files.items()}
    server = TlsHolder(bundles["server"], alpn=["h2"])
    client = TlsHolder(bundles["client"], alpn=["h2"])
    server.update(issue_credentials(old, API))
    client.update(issue_credentials(old, WEB))
    # a peer that trusts both anchors but never renewed: its leaf chains to the old one only
    stale_peer = TlsHolder(old.anchors_pem + new.anchors_pem, alpn=["h2"])
    stale_peer.update(issue_credentials(old, WEB))

    async for echo in _server(server):
        reader, writer = await _dial(echo, client, API)
        assert await _roundtrip(reader, writer, b"before") == b"before"

        # 1. the new anchor joins the bundle everywhere (picked up within the interval)
        for f in files.values():
            _write(f, old.anchors_pem + new.anchors_pem)
        clock.now += 1.0
        # 2. the issuer is re-signed by the new anchor; proxies renew onto it
        new_server = issue_credentials(new, API)
        server.update(new_server)
        client.update(issue_credentials(new, WEB))
        assert server.bundle.generation == client.bundle.generation == 2
        assert len(server.bundle.anchors()) == 2
        r2, w2 = await _dial(echo, client, API)  # new to new
        assert await _roundtrip(r2, w2, b"new") == b"new"
        r3, w3 = await _dial(echo, stale_peer, API)  # during the overlap the old one still works
        assert await _roundtrip(r3, w3, b"old") == b"old"
        await _close(w3)

        # 3. the old anchor leaves the bundle
        for f in files.values():
            _write(f, new.anchors_pem)
        clock.now += 1.0
        r4, w4 = await _dial(echo, client, API)
        assert await _roundtrip(r4, w4, b"after") == b"after"
        assert server.bundle_reloads == client.bundle_reloads == 1  # (the rebuild after step 3)
        assert await _roundtrip(reader, writer, b"still open") == b"still open"
        assert await _roundtrip(r2, w2, b"still open") == b"still open"

        # the stale peer as a client: refused by the server (TLS 1.3: after the handshake)
        failures = len(echo.failures)
        r5, w5 = await _dial(echo, stale_peer, API)
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await _roundtrip(r5, w5, b"refused")
        await _close(w5)
        for _ in range(200):
            if len(echo.failures) > failures:
                break
            await asyncio.sleep(0.01)
        assert echo.failures[failures:] == ["unknown_ca"]
        # ...and as a server: our client refuses its certificate
        async for stale in _server(_stale_api(old)):
            with pytest.raises(ssl.SSLCertVerificationError):
                await _dial(stale, client, API)
        for w in (writer, w2, w4):
            await _close(w)
        del r4


def _stale_api(old: Pki) -> TlsHolder:
    holder = TlsHolder(old.anchors_pem, alpn=["h2"])
    holder.update(issue_credentials(old, API))
    return holder


def test_a_broken_bundle_keeps_the_last_good_one(old: Pki, tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "ca-bundle.crt"
    path.write_text(old.anchors_pem)
    bundle = TrustBundle.from_file(path, clock=clock)
    _write(path, "not a certificate\n")
    clock.now += 0.5
    assert not bundle.refresh()  # within the interval: not even looked at
    clock.now += 0.5
    assert not bundle.refresh() and bundle.pem() == old.anchors_pem and bundle.generation == 1
    path.unlink()
    clock.now += 1.0
    assert bundle.pem() == old.anchors_pem
    _write(path, old.anchors_pem + old.anchors_pem)
    clock.now += 1.0
    assert bundle.refresh() and bundle.generation == 2 and len(bundle.anchors()) == 2
