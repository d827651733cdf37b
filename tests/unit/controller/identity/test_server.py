"""The identity service over real TLS on loopback, driven by the proxy's own client."""

from __future__ import annotations

import asyncio
import os
import ssl

import pytest
from cryptography import x509
from tests.unit.controller.identity.running import KEY, RunningIdentity
from tests.unit.proxy.identity.pki import Pki

from lacewing.core.identity import mint_local_token
from lacewing.errors import IdentityError
from lacewing.proxy.identity.credentials import make_csr, new_private_key


async def test_certify_over_tls_returns_a_leaf_for_the_csr_key(
    identity_server: RunningIdentity,
) -> None:
    ident = identity_server.pki.identity()
    key = new_private_key()
    answer = await identity_server.client().certify(
        ident, mint_local_token(KEY, "shop", "web"), make_csr(key, ident)
    )
    leaf = x509.load_pem_x509_certificate(answer.leaf_pem.encode())
    assert leaf.public_key() == key.public_key()
    assert answer.chain_pem == [identity_server.pki.issuer_ck.cert_pem]
    assert answer.valid_until == leaf.not_valid_after_utc


async def test_refusals_reach_the_client_as_one_clear_line(
    identity_server: RunningIdentity,
) -> None:
    ident = identity_server.pki.identity()
    client = identity_server.client()
    csr = make_csr(new_private_key(), ident)
    with pytest.raises(IdentityError, match=r"refused \(401\): token refused"):
        await client.certify(ident, "v1:shop:web:bad", csr)
    with pytest.raises(IdentityError, match=r"refused \(403\): token proves admin.shop"):
        await client.certify(ident, mint_local_token(KEY, "shop", "admin"), csr)
    with pytest.raises(IdentityError, match=r"refused \(400\): the CSR is not a PEM"):
        await client.certify(ident, mint_local_token(KEY, "shop", "web"), "nonsense")
    assert identity_server.service.issued == 0


async def test_a_client_with_other_trust_anchors_refuses_the_service(
    identity_server: RunningIdentity,
) -> None:
    ident = identity_server.pki.identity()
    client = identity_server.client(Pki.make().anchors_pem)
    with pytest.raises(IdentityError, match="TLS to the identity service"):
        await client.certify(
            ident, mint_local_token(KEY, "shop", "web"), make_csr(new_private_key(), ident)
        )


async def test_a_rotated_issuer_is_used_without_restart(identity_server: RunningIdentity) -> None:
    ident = identity_server.pki.identity()
    token = mint_local_token(KEY, "shop", "web")
    first = await identity_server.client().certify(ident, token, make_csr(new_private_key(), ident))
    old_issuer = identity_server.pki.issuer_ck.certificate

    identity_server.pki.rotate_issuer()  # what cert-manager does: new issuer, same anchor
    identity_server.pki.write_issuer_dir(identity_server.issuer_dir)
    second = await identity_server.client().certify(
        ident, token, make_csr(new_private_key(), ident)
    )

    new_issuer = identity_server.pki.issuer_ck.certificate
    assert new_issuer != old_issuer
    assert first.chain_pem != second.chain_pem
    x509.load_pem_x509_certificate(second.leaf_pem.encode()).verify_directly_issued_by(new_issuer)
    assert identity_server.files.loads == 2
    assert identity_server.server.cert.issued == 2  # its own serving cert follows the issuer


async def test_a_broken_rotation_keeps_the_last_good_issuer(
    identity_server: RunningIdentity,
) -> None:
    ident = identity_server.pki.identity()
    (identity_server.issuer_dir / "tls.key").write_text(Pki.make().issuer_ck.key_pem)  # mismatched
    answer = await identity_server.client().certify(
        ident, mint_local_token(KEY, "shop", "web"), make_csr(new_private_key(), ident)
    )
    x509.load_pem_x509_certificate(answer.leaf_pem.encode()).verify_directly_issued_by(
        identity_server.pki.issuer_ck.certificate
    )


async def _raw(port: int, request: bytes, anchors: str) -> bytes:
    context = ssl.create_default_context(cadata=anchors)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1",
        port,
        ssl=context,
        server_hostname="lacewing-identity.lacewing.serviceaccount.identity.lacewing.cluster.local",
    )
    writer.write(request)
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


async def test_http_surface_is_small_and_answers_json(identity_server: RunningIdentity) -> None:
    port, anchors = identity_server.server.bound_port, identity_server.pki.anchors_pem
    ready = await _raw(port, b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n", anchors)
    assert ready.startswith(b"HTTP/1.1 200 OK") and b'"ready"' in ready
    missing = await _raw(port, b"GET /v2/x HTTP/1.1\r\nHost: x\r\n\r\n", anchors)
    assert missing.startswith(b"HTTP/1.1 404") and b"POST /v1/certify" in missing
    not_json = await _raw(
        port, b"POST /v1/certify HTTP/1.1\r\nContent-Length: 3\r\n\r\n{{{", anchors
    )
    assert not_json.startswith(b"HTTP/1.1 400") and b"not JSON" in not_json
    too_big = await _raw(
        port, b"POST /v1/certify HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", anchors
    )
    assert too_big.startswith(b"HTTP/1.1 413")
    # Found by tests/unit/fuzz/test_identity_fuzz.py: both used to end the connection with no
    # answer (a traceback in the log): "²" passes str.isdigit() but not int(), and arrays
    # nested 40,000 deep are a RecursionError in json.loads.
    superscript = await _raw(
        port, b"POST /v1/certify HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n{}", anchors
    )
    assert superscript.startswith(b"HTTP/1.1 411")
    nested = await _raw(
        port, b"POST /v1/certify HTTP/1.1\r\nContent-Length: 40000\r\n\r\n" + b"[" * 40_000, anchors
    )
    assert nested.startswith(b"HTTP/1.1 400") and b"not JSON" in nested
    assert identity_server.server.stats.errors.get("internal", 0) == 0


def test_the_memfd_files_do_not_outlive_the_load() -> None:
    before = set(os.listdir("/proc/self/fd"))
    from lacewing.proxy.identity.credentials import load_chain_in_memory

    pki = Pki.make()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_chain_in_memory(context, pki.issuer_ck.cert_pem.encode(), pki.issuer_ck.key_pem.encode())
    assert set(os.listdir("/proc/self/fd")) <= before
