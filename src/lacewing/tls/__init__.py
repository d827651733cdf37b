"""Shared X.509 code: certificates for identity and for the control plane's webhooks.

    pem.py        read/write PEM certificates and keys; one CertificateError per mistake
    pki.py        generate the trust anchor, the identity issuer and webhook serving certs
    validate.py   the checks `install` and `check` share (algorithm, validity, chain, names)
    issuance.py   sign a proxy's leaf certificate from its CSR with the issuer

Modules are imported directly (`from lacewing.tls.pki import ...`); this package imports
nothing, so the proxy can use one part without loading the others.
"""
