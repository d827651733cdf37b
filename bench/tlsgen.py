"""A throwaway CA and two leaf certificates for the HAProxy mTLS row of the benchmark.

`make_pki(dir)` writes, with `cryptography`, an ECDSA P-256 CA and two leaves signed by it:
the server leaf (what the server-side proxy presents; SAN `server.lwb.test` and 127.0.0.1) and
the client leaf (what the client-side proxy presents, so the pair does mutual TLS the way two
meshed sidecars do). HAProxy wants certificate and key in one PEM file, so each leaf is written
as `<name>.pem` = certificate + key; the CA is `ca.pem`. P-256 keeps handshakes cheap, as a
mesh's leaf certificates would. Everything is valid for one day and lives in the run's
temporary directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["SERVER_NAME", "Pki", "make_pki"]

SERVER_NAME = "server.lwb.test"


@dataclass(frozen=True)
class Pki:
    ca: Path  # CA certificate (PEM)
    server: Path  # server leaf: certificate + key (PEM)
    client: Path  # client leaf: certificate + key (PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_pki(directory: Path) -> Pki:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("lacewing bench CA"))
        .issuer_name(_name("lacewing bench CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common_name: str, usage: x509.ObjectIdentifier) -> bytes:
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(common_name)]
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM) + _key_pem(key)

    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "client.pem")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.server.write_bytes(leaf(SERVER_NAME, ExtendedKeyUsageOID.SERVER_AUTH))
    pki.client.write_bytes(leaf("client.lwb.test", ExtendedKeyUsageOID.CLIENT_AUTH))
    for path in (pki.server, pki.client):
        path.chmod(0o600)
    return pki
