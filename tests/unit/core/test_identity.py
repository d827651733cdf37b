from __future__ import annotations

import pytest

from lacewing.core.identity import (
    Identity,
    IdentityParseError,
    LocalTokenValidator,
    Validator,
    identity_from_username,
    identity_service_name,
    mint_local_token,
    parse_identity,
    parse_spiffe_id,
)


def test_names_follow_the_documented_shapes() -> None:
    ident = Identity("shop", "web", "cluster.local")
    assert ident.name == "web.shop.serviceaccount.identity.lacewing.cluster.local"
    assert ident.spiffe_id == "spiffe://cluster.local/ns/shop/sa/web"
    assert ident.username == "system:serviceaccount:shop:web"
    assert str(identity_service_name("lacewing", "example.org")) == (
        "lacewing-identity.lacewing.serviceaccount.identity.lacewing.example.org"
    )


@pytest.mark.parametrize(
    "ident",
    [
        Identity("shop", "web"),
        Identity("a", "sa.with.dots", "prod.example.com"),
        Identity("ns-1", "x", "td"),
    ],
)
def test_both_forms_parse_back(ident: Identity) -> None:
    assert parse_identity(ident.name) == ident
    assert parse_spiffe_id(ident.spiffe_id) == ident
    assert identity_from_username(ident.username, ident.trust_domain) == ident


@pytest.mark.parametrize(
    "text",
    [
        "web.shop.cluster.local",
        "shop.serviceaccount.identity.lacewing.cluster.local",
        "web.Shop.serviceaccount.identity.lacewing.cluster.local",
        "web.shop.serviceaccount.identity.lacewing.",
        "web.shop.serviceaccount.identity.lacewing.bad_domain",
    ],
)
def test_malformed_names_are_refused(text: str) -> None:
    with pytest.raises(IdentityParseError):
        parse_identity(text)


def test_a_name_from_another_trust_domain_is_refused() -> None:
    name = Identity("shop", "web", "evil.org").name
    with pytest.raises(IdentityParseError, match=r"not 'cluster\.local'"):
        parse_identity(name, "cluster.local")


@pytest.mark.parametrize(
    "text",
    ["spiffe://td/ns/shop", "https://td/ns/shop/sa/web", "spiffe://td/sa/web/ns/shop"],
)
def test_malformed_spiffe_ids_are_refused(text: str) -> None:
    with pytest.raises(IdentityParseError):
        parse_spiffe_id(text)


@pytest.mark.parametrize("username", ["alice", "system:serviceaccount:shop", "system:node:n1"])
def test_usernames_that_are_not_service_accounts_are_refused(username: str) -> None:
    with pytest.raises(IdentityParseError):
        identity_from_username(username, "cluster.local")


def test_invalid_parts_are_refused_at_construction() -> None:
    with pytest.raises(IdentityParseError, match="namespace"):
        Identity("Shop", "web")
    with pytest.raises(IdentityParseError, match="service account"):
        Identity("shop", "web/../x")
    with pytest.raises(IdentityParseError, match="trust domain"):
        Identity("shop", "web", "UPPER.case")


async def test_local_tokens_prove_exactly_their_service_account() -> None:
    key = b"0123456789abcdef-local-key"
    validator = LocalTokenValidator(key)
    assert isinstance(validator, Validator)
    token = mint_local_token(key, "shop", "web")
    review = await validator.validate(token)
    assert review.authenticated and review.username == "system:serviceaccount:shop:web"

    forged = token.replace(":web:", ":admin:")
    assert not (await validator.validate(forged)).authenticated
    other_key = mint_local_token(b"another-key-entirely", "shop", "web")
    refused = await validator.validate(other_key)
    assert not refused.authenticated and "signature" in refused.error
    assert "local-runtime token" in (await validator.validate("garbage")).error
