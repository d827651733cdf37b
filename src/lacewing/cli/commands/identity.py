"""`lacewing identity ADDR...`: show the certificate a meshed proxy presents.

For each `host:port` (a proxy's inbound port, 4143 in a pod) it opens a TLS connection,
takes the certificate the proxy presents in the handshake (TLS 1.3 delivers it before the
proxy checks ours, so no client certificate is needed) and prints, as `linkerd identity`
does for a pod, a header per target, the certificate's identity fields and its PEM.

With `--trust-anchors FILE` the chain is verified against those anchors and the result is
printed; without, the certificate is shown unverified (and says so). A target that cannot be
reached or does not speak TLS prints one error line; the exit status is 1 if any target
failed.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import UsageError

__all__ = ["IdentityOptions", "command", "render_certificate", "run"]

_ISO = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class IdentityOptions:
    targets: tuple[str, ...]
    trust_anchors: Path | None = None
    timeout: float = 5.0


def render_certificate(pem: str, verified: str) -> list[str]:
    """The lines printed for one certificate (its fields, then its PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    cert = x509.load_pem_x509_certificate(pem.encode())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        dns, uris = [], []
    key = cert.public_key()
    key_text = (
        f"ECDSA {key.curve.name}"
        if isinstance(key, ec.EllipticCurvePublicKey)
        else type(key).__name__.lstrip("_")
    )
    fields = [
        ("Identity", ", ".join(dns) or "-"),
        ("SPIFFE ID", ", ".join(uris) or "-"),
        ("Subject", cert.subject.rfc4514_string() or "-"),
        ("Issuer", cert.issuer.rfc4514_string() or "-"),
        ("Serial", f"{cert.serial_number:#x}"),
        ("Not before", cert.not_valid_before_utc.strftime(_ISO)),
        ("Not after", cert.not_valid_after_utc.strftime(_ISO)),
        ("Key", key_text),
        ("Verified", verified),
    ]
    return [f"{name + ':':<12}{value}" for name, value in fields] + ["", *pem.strip().splitlines()]


def _split(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{target!r} is not host:port", hint="for example 10.42.0.7:4143")
    return host.strip("[]"), int(port)


def _fetch(target: str, anchors: Path | None, timeout: float) -> tuple[str, str]:
    host, port = _split(target)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    if anchors is None:
        context.verify_mode = ssl.CERT_NONE
        verified = "no (no --trust-anchors given)"
    else:
        context.load_verify_locations(cafile=str(anchors))
        verified = f"yes, against {anchors}"
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("the peer presented no certificate")
    return ssl.DER_cert_to_PEM_cert(der), verified


def run(options: IdentityOptions, ctx: GlobalOptions, out: Output) -> int:
    if options.trust_anchors is not None and not options.trust_anchors.is_file():
        raise UsageError(f"--trust-anchors {options.trust_anchors} is not a readable file")
    for target in options.targets:
        _split(target)  # all or nothing: a typo is a usage error before any output
    failed = 0
    total = len(options.targets)
    for index, target in enumerate(options.targets, 1):
        if index > 1:
            out.line()
        out.line(f"TARGET {target} ({index} of {total})")
        out.line()
        try:
            pem, verified = _fetch(target, options.trust_anchors, options.timeout)
        except ssl.SSLCertVerificationError as exc:
            failed += 1
            out.line(f"Error: the certificate of {target} does not verify: {exc.verify_message}")
            continue
        except (OSError, ssl.SSLError) as exc:
            failed += 1
            out.line(f"Error: cannot get a certificate from {target}: {exc.strerror or exc}")
            continue
        for line in render_certificate(pem, verified):
            out.line(line)
    return 1 if failed else 0


@click.command("identity")
@click.argument("targets", nargs=-1, required=True)
@click.option(
    "--trust-anchors",
    type=click.Path(path_type=Path),
    help="Verify the certificates against these trust anchors (PEM).",
)
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds per target.")
@click.pass_obj
def command(
    g: GlobalOptions, targets: tuple[str, ...], trust_anchors: Path | None, timeout: float
) -> int:
    """Show the certificate that meshed proxies at TARGETS (host:port) present."""
    options = IdentityOptions(targets, trust_anchors, timeout)
    return run(options, g or GlobalOptions(), Output())
