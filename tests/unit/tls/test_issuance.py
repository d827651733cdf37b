from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.unit.proxy.identity.pki import Pki

from lacewing.core.identity import Identity
from lacewing.errors import CertificateError, IdentityError
from lacewing.proxy.identity.keygen import make_csr, new_private_key
from lacewing.tls.issuance import Issuer, issue_leaf, load_csr

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WEB = Identity("shop", "web")


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.make(now=NOW - timedelta(days=1))


def _csr(key: object, names: list[x509.GeneralName] | None = None, cn: str | None = None) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or WEB.name)])
    )
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    csr = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_leaf_has_both_names_lifetime_backdating_and_verifies(pki: Pki) -> None:
    key = new_private_key()
    issued = issue_leaf(make_csr(key, WEB), WEB, pki.issuer, now=NOW)
    leaf = x509.load_pem_x509_certificate(issued.leaf_pem.encode())

    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [WEB.name]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [WEB.spiffe_id]
    assert leaf.not_valid_before_utc == NOW - timedelta(seconds=20)
    assert leaf.not_valid_after_utc == NOW + timedelta(hours=24) == issued.valid_until
    assert leaf.public_key() == key.public_key()
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    leaf.verify_directly_issued_by(pki.issuer_ck.certificate)
    assert issued.chain_pem == [pki.issuer_ck.cert_pem]


def test_lifetime_and_skew_are_configurable_and_capped_by_the_issuer(pki: Pki) -> None:
    csr = make_csr(new_private_key(), WEB)
    issued = issue_leaf(
        csr, WEB, pki.issuer, now=NOW, lifetime=timedelta(hours=1), clock_skew=timedelta(0)
    )
    leaf = x509.load_pem_x509_certificate(issued.leaf_pem.encode())
    assert leaf.not_valid_before_utc == NOW
    assert issued.valid_until == NOW + timedelta(hours=1)

    short = Pki.make(now=NOW - timedelta(hours=1), issuer_lifetime=timedelta(hours=2))
    capped = issue_leaf(csr, WEB, short.issuer, now=NOW)
    assert capped.valid_until == short.issuer_ck.certificate.not_valid_after_utc


def test_an_expired_issuer_issues_nothing(pki: Pki) -> None:
    csr = make_csr(new_private_key(), WEB)
    with pytest.raises(CertificateError, match="issuer expired"):
        issue_leaf(csr, WEB, pki.issuer, now=NOW + timedelta(days=400))


@pytest.mark.parametrize(
    ("names", "cn", "message"),
    [
        ([x509.DNSName(Identity("shop", "admin").name)], None, "DNS name"),
        ([x509.UniformResourceIdentifier("spiffe://cluster.local/ns/x/sa/y")], None, "URI"),
        (None, Identity("shop", "admin").name, "common name"),
        (
            [
                x509.DNSName(WEB.name),
                x509.IPAddress(__import__("ipaddress").ip_address("10.0.0.1")),
            ],
            None,
            "other than DNS",
        ),
    ],
)
def test_csrs_asking_for_other_names_are_refused(
    pki: Pki, names: list[x509.GeneralName] | None, cn: str | None, message: str
) -> None:
    with pytest.raises(IdentityError, match=message):
        issue_leaf(_csr(new_private_key(), names, cn), WEB, pki.issuer, now=NOW)


@pytest.mark.parametrize(
    "key",
    [ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)],
    ids=["p384", "rsa"],
)
def test_csrs_with_another_key_type_are_refused(pki: Pki, key: object) -> None:
    with pytest.raises(IdentityError, match="P-256"):
        issue_leaf(_csr(key, [x509.DNSName(WEB.name)]), WEB, pki.issuer, now=NOW)


def test_malformed_csrs_are_refused() -> None:
    with pytest.raises(CertificateError, match="not a PEM"):
        load_csr("hello")
    pem = make_csr(new_private_key(), WEB)
    der = x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER)
    tampered = bytearray(der)
    tampered[-10] ^= 0xFF  # inside the signature
    import base64

    body = base64.encodebytes(bytes(tampered)).decode()
    bad = f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"
    with pytest.raises(CertificateError):
        load_csr(bad)


def test_issuer_loading_refuses_a_key_of_another_certificate(pki: Pki) -> None:
    other = Pki.make()
    with pytest.raises(CertificateError, match="does not match"):
        Issuer.from_pem(pki.issuer_ck.cert_pem.encode(), other.issuer_ck.key_pem.encode())
    with pytest.raises(CertificateError, match="not PEM"):
        Issuer.from_pem(b"nope", pki.issuer_ck.key_pem.encode())


def test_an_identity_longer_than_a_common_name_allows_is_issued_by_its_sans(pki: Pki) -> None:
    bot = Identity("emojivoto", "vote-bot")  # 65 characters: over X.509's 64 for a CN
    assert len(bot.name) == 65
    issued = issue_leaf(make_csr(new_private_key(), bot), bot, pki.issuer, now=NOW)
    leaf = x509.load_pem_x509_certificate(issued.leaf_pem.encode())
    assert leaf.subject == x509.Name([])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical  # RFC 5280: critical SANs when the subject is empty
    assert san.value.get_values_for_type(x509.DNSName) == [bot.name]
    leaf.verify_directly_issued_by(pki.issuer_ck.certificate)
