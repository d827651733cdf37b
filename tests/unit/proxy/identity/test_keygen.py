"""The proxy's key and CSR come from a forked child; its certificates are read without X.509."""

from __future__ import annotations

import os
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.unit.proxy.identity.pki import Pki

from lacewing.errors import CertificateError
from lacewing.proxy.identity.credentials import Credentials, validity
from lacewing.proxy.identity.keygen import PendingKey, start_keygen
from lacewing.tls.issuance import check_csr, issue_leaf, load_csr


def test_the_forked_child_makes_a_p256_key_and_a_csr_the_issuer_accepts() -> None:
    pki = Pki.make()
    ident = pki.identity()
    made = start_keygen(ident).result()
    key = serialization.load_pem_private_key(made.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    csr = load_csr(made.csr_pem)
    assert check_csr(csr, ident) == key.public_key()
    leaf = issue_leaf(made.csr_pem, ident, pki.issuer, now=datetime.now(UTC))
    creds = Credentials.from_pem(ident, made.key_pem, leaf.leaf_pem, leaf.chain_pem)
    parsed = x509.load_pem_x509_certificate(leaf.leaf_pem.encode())
    assert creds.not_after == parsed.not_valid_after_utc
    assert creds.not_before == parsed.not_valid_before_utc


def test_a_child_that_fails_is_one_clear_error_every_time() -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write_fd, b"ERR\nMemoryError()")
        os._exit(1)
    os.close(write_fd)
    pending = PendingKey(pid, read_fd)
    for _ in range(2):
        with pytest.raises(CertificateError, match="could not make this proxy's key and CSR: Mem"):
            pending.result()


def _self_signed(not_before: datetime, not_after: datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "t")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 12, 6, 21, 0, 1, tzinfo=UTC), datetime(2026, 12, 7, 21, 0, 1, tzinfo=UTC)),
        # from 2050 on, X.509 writes GeneralizedTime instead of UTCTime
        (datetime(1999, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2051, 6, 7, 8, 9, 10, tzinfo=UTC)),
    ],
)
def test_validity_is_read_from_der(start: datetime, end: datetime) -> None:
    assert validity(_self_signed(start, end)) == (start, end)


def test_malformed_certificates_are_refused_with_one_line() -> None:
    pki = Pki.make()
    ident = pki.identity()
    made = start_keygen(ident).result()
    leaf = issue_leaf(made.csr_pem, ident, pki.issuer, now=datetime.now(UTC))
    der = ssl.PEM_cert_to_DER_cert(leaf.leaf_pem)
    cut = ssl.DER_cert_to_PEM_cert(der[: len(der) // 3])
    for bad in ("not a certificate", cut):
        with pytest.raises(CertificateError, match="malformed certificate"):
            Credentials.from_pem(ident, made.key_pem, bad, leaf.chain_pem)
    assert timedelta(0) < Credentials.from_pem(
        ident, made.key_pem, leaf.leaf_pem, leaf.chain_pem
    ).not_after - datetime.now(UTC)
