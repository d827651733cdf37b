"""The proxy's private key and CSR, made where `cryptography` does not stay loaded.

The proxy makes its key once, in memory, and asks for every certificate with the same CSR.
Only that needs `cryptography`, and loading it (with its own copy of OpenSSL) costs a sidecar
about 9 MB of RSS, 4 MB of it private, for the rest of its life. So `start_keygen(identity)`
forks a short-lived child before the event loop runs (the process is single-threaded then):
the child imports `cryptography`, makes an ECDSA P-256 key and the CSR, writes both as PEM to
a pipe and exits; the proxy goes on loading and binding meanwhile, and `PendingKey.result()`
reads the pipe (a few milliseconds of waiting at most, once) and reaps the child. The key
never touches a disk: it goes from the child's memory through the pipe into the proxy's, and
from there into OpenSSL through `credentials.load_chain_in_memory`.

`generate_in_process(identity)` makes the same pair here (tests, and callers that already
have `cryptography` loaded). `new_private_key` and `make_csr` are the two steps, for tests and
the controller's tests that need a CSR.

    child -> pipe:  b"OK\\n" + key PEM + b"\\0" + CSR PEM     (or b"ERR\\n" + the error)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lacewing.core.identity import Identity
from lacewing.errors import CertificateError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "KeyAndCsr",
    "PendingKey",
    "generate_in_process",
    "make_csr",
    "new_private_key",
    "start_keygen",
]


@dataclass(frozen=True)
class KeyAndCsr:
    key_pem: bytes  # PKCS#8, unencrypted: it only ever lives in memory
    csr_pem: str


def new_private_key() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key: ec.EllipticCurvePrivateKey, identity: Identity) -> str:
    """A PEM CSR asking for `identity` (CN and both SANs), signed by `key`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    from lacewing.tls.issuance import identity_subject, san_is_critical

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(identity_subject(identity.name))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(identity.name), x509.UniformResourceIdentifier(identity.spiffe_id)]
            ),
            critical=san_is_critical(identity.name),
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def generate_in_process(identity: Identity) -> KeyAndCsr:
    from cryptography.hazmat.primitives import serialization

    key = new_private_key()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyAndCsr(key_pem, make_csr(key, identity))


class PendingKey:
    """A key and CSR being made by a forked child; `result()` waits for them (once)."""

    def __init__(self, pid: int, fd: int) -> None:
        self._pid, self._fd = pid, fd
        self._result: KeyAndCsr | None = None
        self._error: CertificateError | None = None

    def result(self) -> KeyAndCsr:
        """The key and CSR; the child's failure, every time it is asked, if it failed."""
        if self._result is not None:
            return self._result
        if self._error is not None:
            raise self._error
        chunks = []
        try:
            while chunk := os.read(self._fd, 65536):
                chunks.append(chunk)
        finally:
            os.close(self._fd)
            os.waitpid(self._pid, 0)
        data = b"".join(chunks)
        status, _, body = data.partition(b"\n")
        key_pem, sep, csr_pem = body.partition(b"\0")
        if status != b"OK" or not sep:
            reason = body.decode(errors="replace").strip() or "it exited without an answer"
            self._error = CertificateError(f"could not make this proxy's key and CSR: {reason}")
            raise self._error
        self._result = KeyAndCsr(key_pem, csr_pem.decode())
        return self._result


def start_keygen(identity: Identity) -> PendingKey:
    """Fork the child that makes the key and CSR; call before any thread or event loop runs."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns, never runs the parent's atexit or flushes its I/O
        code = 1
        try:
            os.close(read_fd)
            made = generate_in_process(identity)
            _write_all(write_fd, b"OK\n" + made.key_pem + b"\0" + made.csr_pem.encode())
            code = 0
        except BaseException as exc:
            try:
                _write_all(write_fd, b"ERR\n" + repr(exc).encode(errors="replace"))
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(write_fd)
    return PendingKey(pid, read_fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
