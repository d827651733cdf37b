"""The TLS rows' certificates chain to their CA and name the server the proxies dial."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from bench.tlsgen import SERVER_NAME, make_pki
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID


def test_leaves_are_signed_by_the_ca_and_carry_their_keys(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    server = x509.load_pem_x509_certificate(pki.server.read_bytes())
    client = x509.load_pem_x509_certificate(pki.client.read_bytes())
    for leaf in (server, client):
        leaf.verify_directly_issued_by(ca)
    assert b"PRIVATE KEY" in pki.server.read_bytes()
    assert pki.client.stat().st_mode & 0o077 == 0

    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert SERVER_NAME in sans.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
