"""A real identity service on loopback for tests (fixture `identity_server`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.unit.proxy.identity.pki import Pki

from lacewing.controller.identity.issuer_files import IssuerFiles
from lacewing.controller.identity.server import IdentityServer
from lacewing.controller.identity.service import IdentityService
from lacewing.core.identity import LocalTokenValidator, identity_service_name
from lacewing.proxy.identity.client import IdentityClient

KEY = b"local-runtime-key-0123456789"


@dataclass
class RunningIdentity:
    pki: Pki
    issuer_dir: Path
    files: IssuerFiles
    service: IdentityService
    server: IdentityServer

    def client(self, anchors_pem: str | None = None) -> IdentityClient:
        return IdentityClient(
            "127.0.0.1",
            self.server.bound_port,
            identity_service_name("lacewing", self.pki.trust_domain),
            anchors_pem or self.pki.anchors_pem,
            timeout=5,
        )


@pytest.fixture
async def identity_server(tmp_path: Path) -> AsyncIterator[RunningIdentity]:
    """A real identity service on loopback (TLS), local-token validator, issuer from files."""
    pki = Pki.make()
    issuer_dir = pki.write_issuer_dir(tmp_path / "issuer")
    files = IssuerFiles(issuer_dir, [pki.anchor.certificate])
    service = IdentityService("cluster.local", LocalTokenValidator(KEY), files.current)
    server = IdentityServer(
        service, identity_service_name("lacewing", "cluster.local"), "127.0.0.1", 0
    )
    await server.start()
    try:
        yield RunningIdentity(pki, issuer_dir, files, service, server)
    finally:
        await server.stop()
