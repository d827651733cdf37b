from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from tests.unit.proxy.identity.pki import Pki

from lacewing.controller.identity.service import IdentityService
from lacewing.core.identity import LocalTokenValidator, TokenReview, mint_local_token
from lacewing.errors import CertificateError, ClusterUnreachable
from lacewing.proxy.identity.credentials import make_csr, new_private_key
from lacewing.tls.issuance import Issuer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = b"local-runtime-key-0123456789"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.make(now=NOW - timedelta(days=1))


def _service(pki: Pki, **kw: object) -> IdentityService:
    issuer = pki.issuer
    defaults: dict[str, object] = {
        "trust_domain": "cluster.local",
        "validator": LocalTokenValidator(KEY),
        "issuer": lambda: issuer,
        "now": lambda: NOW,
    }
    defaults.update(kw)
    return IdentityService(**defaults)  # type: ignore[arg-type]


def _request(pki: Pki, ns: str = "shop", sa: str = "web", **overrides: str) -> dict[str, str]:
    ident = pki.identity(ns, sa)
    body = {
        "identity": ident.name,
        "token": mint_local_token(KEY, ns, sa),
        "csr": make_csr(new_private_key(), ident),
    }
    body.update(overrides)
    return body


async def test_a_good_token_gets_a_leaf_for_its_identity(pki: Pki) -> None:
    service = _service(pki)
    result = await service.certify(_request(pki))
    assert result.status == 200, result.body
    leaf = x509.load_pem_x509_certificate(result.body["leaf"].encode())
    assert leaf.subject.rfc4514_string() == f"CN={pki.identity().name}"
    assert result.body["valid_until"] == "2026-03-02T12:00:00Z"
    assert result.body["chain"] == [pki.issuer_ck.cert_pem]
    assert (service.issued, service.refused) == (1, 0)


def _unparsable_san_csr() -> str:
    raw = x509.UnrecognizedExtension(x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x01\x02")
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    csr = builder.add_extension(raw, critical=False).sign(new_private_key(), hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


_UNPARSABLE_SAN = _unparsable_san_csr()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("not an object", 400, "JSON object"),
        ({"token": "", "csr": ""}, 400, "field(s): token, csr"),
        ({"csr": "garbage"}, 400, "not a PEM"),
        ({"identity": "web.shop.cluster.local"}, 400, "not an identity name"),
        ({"token": "v1:shop:web:00"}, 401, "token refused"),
        ({"token": mint_local_token(KEY, "shop", "admin")}, 403, "token proves admin.shop"),
        # Found by tests/unit/fuzz/test_identity_fuzz.py (each raised out of certify): JSON's
        # "\ud800" is a lone surrogate, which str.encode() refuses; a signed CSR whose SAN
        # extension is not DER GeneralNames failed in the name checks with a ValueError.
        ({"csr": "\ud800"}, 400, "not a PEM"),
        ({"token": "v1:shop:web:\ud800"}, 401, "not a local-runtime token"),
        ({"csr": _UNPARSABLE_SAN}, 400, "extensions do not parse"),
    ],
)
async def test_bad_requests_are_refused_with_a_clear_status(
    pki: Pki, body: object, status: int, message: str
) -> None:
    service = _service(pki)
    request = {**_request(pki), **body} if isinstance(body, dict) else body
    result = await service.certify(request)
    assert result.status == status
    assert message in result.body["error"]
    assert "leaf" not in result.body
    assert (service.issued, service.refused) == (0, 1)


async def test_a_csr_for_another_identity_is_forbidden(pki: Pki) -> None:
    other_csr = make_csr(new_private_key(), pki.identity("shop", "admin"))
    result = await _service(pki).certify(_request(pki, csr=other_csr))
    assert result.status == 403
    assert "admin.shop" in result.body["error"]


async def test_an_unreachable_validator_or_issuer_is_503_not_the_callers_fault(pki: Pki) -> None:
    class Down:
        async def validate(self, token: str) -> TokenReview:
            raise ClusterUnreachable("cannot reach the Kubernetes API at https://k8s")

    result = await _service(pki, validator=Down()).certify(_request(pki))
    assert result.status == 503 and "cannot validate the token now" in result.body["error"]

    def no_issuer() -> Issuer:
        raise CertificateError("cannot read the issuer files in /x")

    result = await _service(pki, issuer=no_issuer).certify(_request(pki))
    assert result.status == 503 and "/x" in result.body["error"]

    expired = await _service(pki, now=lambda: NOW + timedelta(days=400)).certify(_request(pki))
    assert expired.status == 503 and "expired" in expired.body["error"]


async def test_a_service_account_token_of_another_trust_domain_cannot_ask_outside_it(
    pki: Pki,
) -> None:
    foreign = Pki.make("other.org", now=NOW - timedelta(days=1))
    request = _request(pki, identity=foreign.identity().name)
    result = await _service(pki).certify(request)
    assert result.status == 400 and "trust domain" in result.body["error"]
