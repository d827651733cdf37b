"""The webhook's HTTPS server on loopback: the install certificate, reviews, bad requests."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.unit.controller.injector.helpers import ENABLED, namespace, pod
from tests.unit.controller.injector.test_admission import FakeLookup, _config, _review

from lacewing.controller.injector.admission import Admission
from lacewing.controller.injector.server import InjectorServer, TlsFiles
from lacewing.errors import CertificateError
from lacewing.install.credentials import generate

HOST = "lacewing-proxy-injector.lacewing.svc"


def _write_certs(directory: Path) -> bytes:
    creds = generate("lacewing", "cluster.local")
    crt, key = creds.webhook_certs["lacewing-proxy-injector"]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tls.crt").write_text(crt)
    (directory / "tls.key").write_text(key)
    return creds.webhook_ca_pem.encode()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[InjectorServer, ssl.SSLContext]]:
    ca = _write_certs(tmp_path / "tls")
    lookup = FakeLookup(namespace("shop", ENABLED), _config())
    server = InjectorServer(
        Admission(lookup, "lacewing"), TlsFiles(tmp_path / "tls"), "127.0.0.1", 0
    )
    await server.start()
    client = ssl.create_default_context(cadata=ca.decode())
    try:
        yield server, client
    finally:
        await server.stop()


async def _call(
    server: InjectorServer, client: ssl.SSLContext, raw: bytes
) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.bound_port, ssl=client, server_hostname=HOST
    )
    writer.write(raw)
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _post(body: bytes, path: str = "/") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def test_reviews_over_https_on_both_paths(
    served: tuple[InjectorServer, ssl.SSLContext],
) -> None:
    server, client = served
    for path in ("/", "/inject"):
        status, body = await _call(server, client, _post(_review(pod()), path))
        assert status == 200
        assert body["kind"] == "AdmissionReview" and body["response"]["allowed"] is True
        assert body["response"]["patchType"] == "JSONPatch"


async def test_bad_requests_are_answered_and_the_server_keeps_serving(
    served: tuple[InjectorServer, ssl.SSLContext],
) -> None:
    server, client = served
    status, body = await _call(server, client, _post(b"{not json"))
    assert status == 400 and "malformed AdmissionReview" in body["message"]
    status, body = await _call(server, client, b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 411
    status, body = await _call(server, client, _post(b"{}", "/mutate"))
    assert status == 404
    status, body = await _call(server, client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405
    status, body = await _call(server, client, b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    status, body = await _call(server, client, _post(_review(pod())))
    assert status == 200 and "patch" in body["response"]


async def test_certificate_must_match_the_service_name(
    served: tuple[InjectorServer, ssl.SSLContext],
) -> None:
    server, client = served
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(
            "127.0.0.1", server.bound_port, ssl=client, server_hostname="elsewhere.svc"
        )


async def test_rotated_certificate_is_served_without_restart(
    served: tuple[InjectorServer, ssl.SSLContext], tmp_path: Path
) -> None:
    server, _ = served
    new_ca = _write_certs(tmp_path / "tls")  # same files, new CA
    client = ssl.create_default_context(cadata=new_ca.decode())
    status, _ = await _call(server, client, b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    assert server.tls.loads == 2


def test_missing_certificate_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CertificateError) as err:
        TlsFiles(tmp_path).context()
    assert "cannot read the webhook certificate" in err.value.message
    (tmp_path / "tls.crt").write_text("nonsense")
    (tmp_path / "tls.key").write_text("nonsense")
    with pytest.raises(CertificateError) as err:
        TlsFiles(tmp_path).context()
    assert "cannot be used" in err.value.message
