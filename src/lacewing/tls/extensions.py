"""The X.509 extensions that say what a certificate may do, written once for every issuer.

`key_usage(ca=...)`: every lacewing certificate may make digital signatures (ECDSA keys sign
the TLS handshake); a CA may also sign certificates and CRLs. `end_entity(builder, ...)` adds,
in this order, what a leaf carries whoever issues it (the identity service's workload leaves,
`install`'s webhook serving certificates): basic constraints "not a CA" (critical), the leaf
key usage (critical), the extended key usages it is for, and the names it is valid for (SANs,
critical only when the subject is empty, RFC 5280 4.2.1.6). Key identifiers stay with the
callers: they differ in how they derive the authority key identifier.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

__all__ = ["end_entity", "key_usage"]


def key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def end_entity(
    builder: x509.CertificateBuilder,
    *,
    usages: Sequence[ObjectIdentifier],
    names: Sequence[x509.GeneralName],
    san_critical: bool = False,
) -> x509.CertificateBuilder:
    """`builder` with a leaf's constraints, key usage, extended key usages and names."""
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=san_critical)
    )
