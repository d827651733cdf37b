"""Loading PEM files: every user mistake is one clear CertificateError."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from lacewing.errors import CertificateError
from lacewing.tls import pki
from lacewing.tls.pem import (
    certificates_to_pem,
    load_certificates,
    load_private_key,
    parse_certificates,
)


@pytest.fixture(scope="module")
def anchor() -> pki.CertifiedKey:
    return pki.generate_trust_anchor()


def test_round_trip_bundle(tmp_path: Path, anchor: pki.CertifiedKey) -> None:
    other = pki.generate_trust_anchor()
    path = tmp_path / "bundle.pem"
    path.write_text(certificates_to_pem([anchor.certificate, other.certificate]))
    assert load_certificates(path) == [anchor.certificate, other.certificate]
    (tmp_path / "key.pem").write_text(anchor.key_pem)
    key = load_private_key(tmp_path / "key.pem")
    assert key.public_key() == anchor.private_key.public_key()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match=r"cannot read trust anchors file .*: no such file"):
        load_certificates(tmp_path / "nope.pem", "trust anchors file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.pem"
    path.write_text("x")
    path.chmod(0)
    with pytest.raises(CertificateError, match="Permission denied"):
        load_certificates(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="it is a directory"):
        load_private_key(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello", "is not PEM"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "malformed"),
    ],
)
def test_not_a_certificate(content: bytes, message: str) -> None:
    with pytest.raises(CertificateError, match=message):
        parse_certificates(content, "issuer certificate file x.pem")


def test_swapped_files_are_named(tmp_path: Path, anchor: pki.CertifiedKey) -> None:
    (tmp_path / "key.pem").write_text(anchor.key_pem)
    (tmp_path / "crt.pem").write_text(anchor.cert_pem)
    with pytest.raises(CertificateError, match="is a private key, not a certificate"):
        load_certificates(tmp_path / "key.pem")
    with pytest.raises(CertificateError, match="is a certificate, not a private key"):
        load_private_key(tmp_path / "crt.pem")


def test_encrypted_key_is_refused_with_a_hint(tmp_path: Path, anchor: pki.CertifiedKey) -> None:
    encrypted = anchor.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    (tmp_path / "k.pem").write_bytes(encrypted)
    with pytest.raises(CertificateError, match="encrypted") as caught:
        load_private_key(tmp_path / "k.pem")
    assert caught.value.hint and "openssl" in caught.value.hint
