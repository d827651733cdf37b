"""Sign a workload's leaf certificate from its CSR with the issuer.

The identity service hands `issue_leaf` a CSR and the identity the caller's token proved.
Before anything is signed the CSR is checked, in this order, and refused with one clear
message at the first problem:

    1. it parses as a PEM CSR and its self-signature verifies      else CertificateError
    2. its key is ECDSA on P-256                                    else IdentityError
    3. every name it asks for is this identity: a subject CN, DNS   else IdentityError
       SANs and URI SANs may each be absent or equal the identity's
       DNS name / SPIFFE ID; nothing else is allowed

(CertificateError = the request is malformed; IdentityError = it is well formed but asks for
something the token does not entitle it to; the identity service maps them to 400 and 403.)

The leaf always carries both names (DNS SAN and SPIFFE URI SAN) whatever the CSR asked,
is not a CA, may sign (digital signature) for TLS server and client authentication, and is
valid from `now - clock_skew` (so a peer whose clock is a little behind accepts it) to
`now + lifetime`, capped at the issuer's own expiry. An issuer that is expired or not yet
valid issues nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lacewing.core.identity import Identity
from lacewing.errors import CertificateError, IdentityError
from lacewing.tls.extensions import end_entity

__all__ = [
    "COMMON_NAME_MAX",
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_LIFETIME",
    "IssuedLeaf",
    "Issuer",
    "check_csr",
    "identity_subject",
    "issue_leaf",
    "load_csr",
    "san_is_critical",
]

DEFAULT_LIFETIME = timedelta(hours=24)
DEFAULT_CLOCK_SKEW = timedelta(seconds=20)

IssuerKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Issuer:
    """The issuer's certificate and key, and the certificates above it up to the anchor.

    `chain` is what a leaf's holder presents after the leaf: the issuer certificate first,
    then any intermediates (the trust anchor itself is usually left out).
    """

    certificate: x509.Certificate
    key: IssuerKey
    chain: tuple[x509.Certificate, ...] = field(default=())

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes, *, source: str = "issuer") -> Issuer:
        """Load `tls.crt` (issuer cert, then optional intermediates) and `tls.key`."""
        try:
            certs = x509.load_pem_x509_certificates(cert_pem)
        except ValueError as exc:
            raise CertificateError(
                f"{source}: the issuer certificate is not PEM ({exc})",
                hint="tls.crt must hold the issuer certificate (PEM), then any intermediates",
            ) from None
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise CertificateError(
                f"{source}: the issuer key is not an unencrypted PEM private key ({exc})"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CertificateError(f"{source}: the issuer key is not an ECDSA key")
        if key.public_key().public_numbers() != _ec_public(certs[0]).public_numbers():
            raise CertificateError(
                f"{source}: the issuer key does not match the issuer certificate",
                hint="tls.key must be the private key of the first certificate in tls.crt",
            )
        return cls(certs[0], key, tuple(certs))

    @property
    def chain_pem(self) -> list[str]:
        return [c.public_bytes(serialization.Encoding.PEM).decode() for c in self.chain]


def _ec_public(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise CertificateError("the issuer certificate does not hold an ECDSA public key")
    return public


@dataclass(frozen=True)
class IssuedLeaf:
    """What the identity service answers with."""

    leaf_pem: str
    chain_pem: list[str]
    valid_until: datetime


def load_csr(pem: bytes | str) -> x509.CertificateSigningRequest:
    """Parse a PEM CSR and verify its self-signature (CertificateError if either fails).

    The subject and the extensions are parsed here too (cryptography parses them on first
    access), so a signed CSR whose names or extensions are malformed DER is refused as
    malformed (400) rather than failing later, in the name checks, with a ValueError.
    """
    try:  # PEM is ASCII; a str from JSON may hold anything, lone surrogates included
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        raise CertificateError("the CSR is not a PEM certificate signing request") from None
    try:
        valid = csr.is_signature_valid
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        valid = False
    if not valid:
        raise CertificateError("the CSR's signature does not verify")
    try:
        csr.subject.rfc4514_string()
        list(csr.extensions)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise CertificateError(f"the CSR's subject or extensions do not parse: {exc}") from None
    return csr


COMMON_NAME_MAX = 64
"""X.509's upper bound for a common name (RFC 5280, ub-common-name)."""


def identity_subject(name: str) -> x509.Name:
    """The subject for an identity: CN=name, or empty when the name is longer than a CN allows.

    The identity always travels in the SANs (DNS name and SPIFFE URI), which is what peers
    verify; the CN is a courtesy for humans. `SA.NS.serviceaccount.identity.lacewing.<td>`
    passes 64 characters easily (`vote-bot.emojivoto...cluster.local` is 65), and RFC 5280
    then asks for an empty subject with critical SANs (`san_is_critical`).
    """
    if len(name) > COMMON_NAME_MAX:
        return x509.Name([])
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def san_is_critical(name: str) -> bool:
    """SANs must be critical when the subject is empty (RFC 5280, 4.2.1.6)."""
    return len(name) > COMMON_NAME_MAX


def check_csr(csr: x509.CertificateSigningRequest, identity: Identity) -> ec.EllipticCurvePublicKey:
    """Refuse (IdentityError) a CSR whose key is not P-256 or whose names are not `identity`."""
    try:
        key = csr.public_key()
    except UnsupportedAlgorithm:
        raise IdentityError("the CSR's key type is not supported; use ECDSA P-256") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise IdentityError("the CSR's key is not ECDSA P-256")
    for cn in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        if cn.value != identity.name:
            raise IdentityError(f"the CSR asks for common name {cn.value!r}, not {identity.name}")
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return key
    for dns in san.get_values_for_type(x509.DNSName):
        if dns != identity.name:
            raise IdentityError(f"the CSR asks for DNS name {dns!r}, not {identity.name}")
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri != identity.spiffe_id:
            raise IdentityError(f"the CSR asks for URI {uri!r}, not {identity.spiffe_id}")
    others = [n for n in san if not isinstance(n, x509.DNSName | x509.UniformResourceIdentifier)]
    if others:
        raise IdentityError(f"the CSR asks for names other than DNS and URI: {others[0]}")
    return key


def issue_leaf(
    csr_pem: bytes | str | x509.CertificateSigningRequest,
    identity: Identity,
    issuer: Issuer,
    *,
    now: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> IssuedLeaf:
    """Check the CSR against `identity` and sign a leaf; `now` must be timezone-aware."""
    csr = csr_pem if isinstance(csr_pem, x509.CertificateSigningRequest) else load_csr(csr_pem)
    public_key = check_csr(csr, identity)
    issuer_cert = issuer.certificate
    if now < issuer_cert.not_valid_before_utc:
        raise CertificateError(
            f"the issuer is not valid before {issuer_cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}"
        )
    if now >= issuer_cert.not_valid_after_utc:
        raise CertificateError(
            f"the issuer expired at {issuer_cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}",
            hint="rotate the issuer certificate (cert-manager, or `lacewing upgrade`)",
        )
    not_before = max(now - clock_skew, issuer_cert.not_valid_before_utc)
    not_after = min(now + lifetime, issuer_cert.not_valid_after_utc)
    issuer_public = _ec_public(issuer_cert)
    template = (
        x509.CertificateBuilder()
        .subject_name(identity_subject(identity.name))
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(secrets.randbits(127) + 1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    builder = (
        end_entity(
            template,
            usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            names=[x509.DNSName(identity.name), x509.UniformResourceIdentifier(identity.spiffe_id)],
            san_critical=san_is_critical(identity.name),
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
    )
    leaf = builder.sign(issuer.key, hashes.SHA256())
    return IssuedLeaf(
        leaf_pem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
        chain_pem=issuer.chain_pem,
        valid_until=not_after,
    )
