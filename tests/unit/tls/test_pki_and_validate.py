"""Generated certificates chain as a verifier expects, and each check fails for its reason."""

from __future__ import annotations

import ssl
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from lacewing.errors import CertificateError
from lacewing.tls import pki
from lacewing.tls.validate import (
    ISSUER_ALGORITHMS,
    algorithm_name,
    check_algorithm,
    check_dns_name,
    check_is_ca,
    check_issued_by,
    check_key_matches,
    check_valid_for,
    check_validity,
    validate_identity_credentials,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def anchor() -> pki.CertifiedKey:
    return pki.generate_trust_anchor(now=NOW)


@pytest.fixture(scope="module")
def issuer(anchor: pki.CertifiedKey) -> pki.CertifiedKey:
    return pki.generate_issuer(anchor, now=NOW)


def test_anchor_and_issuer_are_p256_cas_for_365_days(
    anchor: pki.CertifiedKey, issuer: pki.CertifiedKey
) -> None:
    for ck in (anchor, issuer):
        assert algorithm_name(ck.certificate) == "ECDSA P-256"
        check_is_ca(ck.certificate)
        assert ck.certificate.not_valid_after_utc == NOW + timedelta(days=365)
    cn = issuer.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "identity.lacewing.cluster.local"
    assert issuer.certificate.issuer == anchor.certificate.subject
    constraints = issuer.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.path_length == 0
    validate_identity_credentials([anchor.certificate], issuer.certificate, issuer.private_key, NOW)


def test_openssl_verifies_the_chain(
    tmp_path: Path, anchor: pki.CertifiedKey, issuer: pki.CertifiedKey
) -> None:
    (tmp_path / "ca.pem").write_text(anchor.cert_pem)
    (tmp_path / "issuer.pem").write_text(issuer.cert_pem)
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-attime",
            str(int((NOW + timedelta(days=1)).timestamp())),
            "-CAfile",
            str(tmp_path / "ca.pem"),
            str(tmp_path / "issuer.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_webhook_serving_cert_works_for_a_real_tls_client(tmp_path: Path) -> None:
    ca = pki.generate_webhook_ca()
    serving = pki.generate_serving_certificate(ca, "lacewing-proxy-injector", "lacewing")
    check_dns_name(serving.certificate, "lacewing-proxy-injector.lacewing.svc")
    check_issued_by(serving.certificate, [ca.certificate])
    with pytest.raises(CertificateError, match=r"is not valid for other\.lacewing\.svc"):
        check_dns_name(serving.certificate, "other.lacewing.svc")
    # Python's own verifier (what a TLS client does) accepts it with the CA as the bundle.
    (tmp_path / "crt").write_text(serving.cert_pem)
    (tmp_path / "key").write_text(serving.key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "crt", tmp_path / "key")
    client = ssl.create_default_context(cadata=ca.cert_pem)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(incoming, outgoing, server_hostname="lacewing-proxy-injector.lacewing.svc")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (c, s):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(outgoing.read())
        incoming.write(s_out.read())
    c.do_handshake()  # raises if verification failed
    assert c.getpeercert() is not None


def test_expired_and_not_yet_valid() -> None:
    anchor = pki.generate_trust_anchor(now=NOW, lifetime=timedelta(days=10))
    check_validity(anchor.certificate, NOW + timedelta(days=5))
    with pytest.raises(CertificateError, match=r"expired at 2026-01-11T00:00:00Z") as caught:
        check_validity(anchor.certificate, NOW + timedelta(days=11))
    assert "CN=root.lacewing.cluster.local" in str(caught.value)
    with pytest.raises(CertificateError, match="is not valid before"):
        check_validity(anchor.certificate, NOW - timedelta(hours=1))


def test_valid_for_at_least(anchor: pki.CertifiedKey) -> None:
    check_valid_for(anchor.certificate, 60, NOW + timedelta(days=300))
    with pytest.raises(CertificateError, match="will expire in 59 days"):
        check_valid_for(anchor.certificate, 60, NOW + timedelta(days=305, hours=12))


def test_issuer_cannot_outlive_its_anchor() -> None:
    short = pki.generate_trust_anchor(now=NOW, lifetime=timedelta(days=30))
    issuer = pki.generate_issuer(short, now=NOW)
    assert issuer.certificate.not_valid_after_utc == short.certificate.not_valid_after_utc


def test_issued_by_someone_else(issuer: pki.CertifiedKey) -> None:
    stranger = pki.generate_trust_anchor(now=NOW)
    with pytest.raises(CertificateError, match="was not issued by the trust anchors"):
        check_issued_by(issuer.certificate, [stranger.certificate])


def test_forged_issuer_with_the_right_name_is_rejected(anchor: pki.CertifiedKey) -> None:
    impostor_root = pki.generate_trust_anchor(now=NOW)  # same subject name, different key
    forged = pki.generate_issuer(impostor_root, now=NOW)
    assert forged.certificate.issuer == anchor.certificate.subject
    with pytest.raises(CertificateError):
        check_issued_by(forged.certificate, [anchor.certificate])


def test_key_mismatch(issuer: pki.CertifiedKey) -> None:
    check_key_matches(issuer.certificate, issuer.private_key)
    with pytest.raises(CertificateError, match="private key does not match"):
        check_key_matches(issuer.certificate, pki.new_key())


def _rsa_ca(bits: int) -> x509.Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corp root")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def test_algorithms_are_table_driven() -> None:
    rsa_root = _rsa_ca(2048)
    check_algorithm(rsa_root)  # fine as an anchor
    with pytest.raises(CertificateError, match=r"uses RSA 2048, which is not supported"):
        check_algorithm(rsa_root, ISSUER_ALGORITHMS)
    with pytest.raises(CertificateError, match="RSA 1024"):
        check_algorithm(_rsa_ca(1024))


def test_p384_issuer_is_refused_for_identity(anchor: pki.CertifiedKey) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "i")]))
        .issuer_name(anchor.certificate.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(anchor.private_key, hashes.SHA256())
    )
    with pytest.raises(CertificateError, match="ECDSA P-384"):
        validate_identity_credentials([anchor.certificate], cert, key, NOW)


def test_leaf_is_not_an_issuer() -> None:
    ca = pki.generate_webhook_ca(now=NOW)
    leaf = pki.generate_serving_certificate(ca, "a", "b", now=NOW)
    with pytest.raises(CertificateError, match="is not a CA certificate"):
        validate_identity_credentials([ca.certificate], leaf.certificate, leaf.private_key, NOW)
