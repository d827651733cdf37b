"""Fuzzing the identity controller: certify bodies, CSRs, tokens and the request bytes.

What a pod (or anything that reaches port 8080) controls is the whole of a certify request:
the HTTP head and body, the three JSON fields, the CSR's DER inside the PEM and the token.
Properties, all in memory (no sockets):
- any request bytes get a status (200 or 4xx) from the server's reader, or end as a client
  error (the peer hung up): never another exception, which would answer nothing;
- any JSON field values get 200/400/401/403 from `IdentityService.certify`, never an
  exception, and a 200 only for the identity the token proves;
- CSRs that are *signed* (so they pass the self-signature check) but carry any extensions,
  subject attributes or mutated bytes get 200/400/403, and every issued leaf names exactly
  the requested identity (whatever the CSR asked for);
- a local token proves only what `mint_local_token` minted; any TokenReview answer from the
  API server is turned into a verdict.
CSRs are built by signing mutated CertificationRequestInfo bytes (hand-made DER wrapper), so
mutations reach the extension and name parsers instead of dying at the signature check.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID
from hypothesis import example, given
from hypothesis import strategies as st
from tests.unit.proxy.identity.pki import Pki

from lacewing.controller.https import CLIENT_ERRORS
from lacewing.controller.identity.server import IdentityServer
from lacewing.controller.identity.service import CertifyResult, IdentityService
from lacewing.core.identity import (
    Identity,
    LocalTokenValidator,
    identity_service_name,
    mint_local_token,
)
from lacewing.k8s.tokenreview import interpret
from lacewing.proxy.identity.credentials import make_csr

KEY = b"local-runtime-key-0123456789"
PKI = Pki.make()
ISSUER = PKI.issuer
WEB = PKI.identity("shop", "web")
TOKEN = mint_local_token(KEY, "shop", "web")
DB_TOKEN = mint_local_token(KEY, "shop", "db")
CSR_KEY = ec.generate_private_key(ec.SECP256R1())
GOOD_CSR = make_csr(CSR_KEY, WEB)

# Every code point, lone surrogates included: JSON's "\ud800" decodes to one.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)


def _service() -> IdentityService:
    return IdentityService("cluster.local", LocalTokenValidator(KEY), lambda: ISSUER)


def _certify(body: object) -> CertifyResult:
    return asyncio.run(_service().certify(body))


def _leaf_names(result: CertifyResult) -> tuple[list[str], list[str]]:
    leaf = x509.load_pem_x509_certificate(result.body["leaf"].encode())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), san.get_values_for_type(
        x509.UniformResourceIdentifier
    )


def _assert_only_for(result: CertifyResult, identity: Identity) -> None:
    assert result.status in (200, 400, 401, 403), result
    if result.status == 200:
        assert _leaf_names(result) == ([identity.name], [identity.spiffe_id])


# -- the JSON fields ---------------------------------------------------------------------------

IDENTITIES = st.one_of(st.just(WEB.name), st.just(PKI.identity("shop", "db").name), ANY_TEXT)
TOKENS = st.one_of(
    st.just(TOKEN),
    st.just(DB_TOKEN),
    st.builds(lambda t, i, c: t[:i] + c + t[i + 1 :], st.just(TOKEN), st.integers(0, 80), ANY_TEXT),
    ANY_TEXT,
)
CSRS = st.one_of(
    st.just(GOOD_CSR),
    st.builds(
        lambda i, c: GOOD_CSR[:i] + c + GOOD_CSR[i + 1 :], st.integers(0, len(GOOD_CSR)), ANY_TEXT
    ),
    ANY_TEXT,
)


@given(IDENTITIES, TOKENS, CSRS)
@example(WEB.name, TOKEN, "\ud800")  # found: str.encode() of a lone surrogate raised
@example(WEB.name, "v1:shop:web:\ud800", GOOD_CSR)
def test_certify_answers_any_field_values_and_issues_only_what_the_token_proves(
    name: str, token: str, csr: str
) -> None:
    result = _certify({"identity": name, "token": token, "csr": csr})
    assert result.status in (200, 400, 401, 403), result
    if result.status == 200:
        assert token.strip() == TOKEN and name == WEB.name  # whitespace around it is allowed
        _assert_only_for(result, WEB)


# -- signed CSRs with any content --------------------------------------------------------------

_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _signed_pem(info: bytes) -> str:
    """A CSR whose CertificationRequestInfo is `info` (any bytes), validly signed."""
    signature = CSR_KEY.sign(info, ec.ECDSA(hashes.SHA256()))
    der = _der(0x30, info + _ECDSA_SHA256 + _der(0x03, b"\x00" + signature))
    lines = base64.encodebytes(der).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{lines}-----END CERTIFICATE REQUEST-----\n"


EXTENSION_OIDS = [
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.NAME_CONSTRAINTS,
    x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"),
]
NAME_OIDS = [NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.EMAIL_ADDRESS]
SANS = st.lists(
    st.one_of(
        st.just(x509.DNSName(WEB.name)),
        st.just(x509.UniformResourceIdentifier(WEB.spiffe_id)),
        st.builds(x509.DNSName, st.text("ab.-*", max_size=12)),
        st.builds(x509.UniformResourceIdentifier, st.sampled_from(["spiffe://x/y", "http://a"])),
        st.builds(x509.RFC822Name, st.just("a@b.c")),
    ),
    max_size=3,
)


@st.composite
def _signed_csrs(draw: st.DrawFn) -> str:
    subject = x509.Name(
        [
            x509.NameAttribute(draw(st.sampled_from(NAME_OIDS)), v)
            for v in draw(st.lists(st.sampled_from([WEB.name, "x", "a" * 64]), max_size=2))
        ]
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    sans = draw(SANS)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for oid in draw(st.lists(st.sampled_from(EXTENSION_OIDS[1:]), max_size=2, unique=True)):
        value = draw(st.binary(max_size=8))
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
    if not sans and draw(st.booleans()):  # a SAN whose bytes are not a GeneralNames
        raw = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, draw(st.binary()))
        builder = builder.add_extension(raw, critical=False)
    info = bytearray(builder.sign(CSR_KEY, hashes.SHA256()).tbs_certrequest_bytes)
    for _ in range(draw(st.integers(0, 3))):  # then mutate the bytes, and sign them as they are
        at = draw(st.integers(0, len(info) - 1))
        info[at : at + draw(st.integers(0, 2))] = draw(st.binary(max_size=3))
    return _signed_pem(bytes(info))


def _unparsable_san() -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    raw = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x01\x02")
    pem = builder.add_extension(raw, critical=False).sign(CSR_KEY, hashes.SHA256())
    return pem.public_bytes(serialization.Encoding.PEM).decode()


@given(_signed_csrs())
@example(_unparsable_san())  # found: the SAN's parse error escaped certify (ValueError)
def test_a_signed_csr_of_any_content_gets_a_leaf_naming_only_its_identity(csr: str) -> None:
    result = _certify({"identity": WEB.name, "token": TOKEN, "csr": csr})
    assert result.status in (200, 400, 403), result
    _assert_only_for(result, WEB)


def test_the_hand_made_csr_wrapper_builds_csrs_that_are_issued() -> None:
    """The fuzzer above reaches the name checks only if its unmutated CSRs are accepted."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, WEB.name)])
    )
    info = builder.sign(CSR_KEY, hashes.SHA256()).tbs_certrequest_bytes
    result = _certify({"identity": WEB.name, "token": TOKEN, "csr": _signed_pem(info)})
    assert result.status == 200, result
    _assert_only_for(result, WEB)


# -- the request bytes -------------------------------------------------------------------------

BODY = json.dumps({"identity": WEB.name, "token": TOKEN, "csr": GOOD_CSR}).encode()
LINES = [b"POST /v1/certify HTTP/1.1", b"GET /ready HTTP/1.1", b"POST /x HTTP/1.1", b"GET /"]
HEADERS = [
    b"Host: identity",
    b"Content-Length: %d" % len(BODY),
    b"Content-Length: 2",
    b"Content-Length: \xb2",  # latin-1 superscript two: str.isdigit() says yes, int() says no
    b"Content-Length: 99999999",
    b"Transfer-Encoding: chunked",
    b"X: \xff\x00",
]
BODIES = st.one_of(
    st.just(BODY), st.binary(max_size=64), st.just(b"[" * 40_000), st.just(b'"\\ud800"')
)


@st.composite
def _requests(draw: st.DrawFn) -> bytes:
    head = b"\r\n".join([draw(st.sampled_from(LINES)), *draw(st.lists(st.sampled_from(HEADERS)))])
    data = bytearray(head + b"\r\n\r\n" + draw(BODIES))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(data)))
        data[at : at + draw(st.integers(0, 2))] = draw(st.binary(max_size=3))
    return bytes(data)


SERVER = IdentityServer(_service(), identity_service_name("lacewing", "cluster.local"), port=0)


async def _respond(data: bytes) -> tuple[int, dict[str, object]]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return await SERVER._respond(reader)


@given(_requests())
@example(b"POST /v1/certify HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n{}")  # found: int() raised
@example(b"POST /v1/certify HTTP/1.1\r\nContent-Length: 40000\r\n\r\n" + b"[" * 40_000)  # found
def test_the_identity_server_answers_any_request_with_a_status(data: bytes) -> None:
    try:
        status, body = asyncio.run(_respond(data))
    except CLIENT_ERRORS:
        return  # the request was cut short: the peer hung up, nothing to answer
    assert status == 200 or 400 <= status < 500, (status, body)
    assert status == 200 or "error" in body


# -- tokens ------------------------------------------------------------------------------------


@given(st.one_of(TOKENS, st.builds(lambda t, e: t + e, st.just(TOKEN), ANY_TEXT)))
@example("v1:shop:web:\ud800")  # found: the MAC comparison encoded a lone surrogate
@example("v1:\ud800:web:00")
def test_a_local_token_proves_only_what_was_minted(token: str) -> None:
    review = LocalTokenValidator(KEY).check(token)
    minted = {TOKEN: WEB.username, DB_TOKEN: PKI.identity("shop", "db").username}
    if review.authenticated:
        assert review.username == minted[token.strip()]
    else:
        assert review.error


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["status", "authenticated", "audiences", "user", "username", "error"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(["status", "kind"]), JSON, max_size=2))
@example({"status": {"authenticated": True, "audiences": 5}})
@example({"status": ["x"]})
def test_any_token_review_answer_is_a_verdict(answer: dict[str, Any]) -> None:
    review = interpret(answer)
    if review.authenticated:
        assert review.username.startswith("system:serviceaccount:")
