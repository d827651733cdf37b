"""The shared leaf extensions, as a verifier reads them from a signed certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lacewing.tls.extensions import end_entity, key_usage


def test_only_a_ca_may_sign_certificates() -> None:
    ca, leaf = key_usage(ca=True), key_usage(ca=False)
    assert ca.digital_signature and ca.key_cert_sign and ca.crl_sign
    assert leaf.digital_signature and not leaf.key_cert_sign and not leaf.crl_sign
    assert not (leaf.key_encipherment or leaf.content_commitment or leaf.key_agreement)


@pytest.mark.parametrize("san_critical", [False, True])
def test_a_leaf_is_not_a_ca_and_carries_its_usages_and_names(san_critical: bool) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    template = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(hours=1))
    )
    names = [x509.DNSName("web.shop.svc"), x509.UniformResourceIdentifier("spiffe://td/x")]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = end_entity(template, usages=usages, names=names, san_critical=san_critical).sign(
        key, hashes.SHA256()
    )
    ext = cert.extensions
    basic = ext.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value == key_usage(ca=False)
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not eku.critical and list(eku.value) == usages
    san = ext.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical is san_critical and list(san.value) == names
