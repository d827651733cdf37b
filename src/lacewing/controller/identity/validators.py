"""The local runtime's validator, built from its key file.

Tokens the local runtime mints for its pods are `v1:NS:SA:<HMAC-SHA256(key, "NS/SA")>`
(`lacewing.core.identity.mint_local_token`); the identity service checks them with the same
key, read here from `--local-token-key-file`. The key must be at least 16 bytes; surrounding
whitespace is ignored so that `head -c 32 /dev/urandom | base64 > key` works.

The Kubernetes validator (`lacewing.k8s.tokenreview`) is chosen and built by the CLI, since
the controller layer must not import the Kubernetes client (see `.importlinter`).
"""

from __future__ import annotations

from pathlib import Path

from lacewing.core.identity import LocalTokenValidator
from lacewing.errors import UsageError

__all__ = ["MIN_KEY_BYTES", "local_validator"]

MIN_KEY_BYTES = 16


def local_validator(path: Path | None) -> LocalTokenValidator:
    if path is None:
        raise UsageError(
            "--validator local needs --local-token-key-file",
            hint="the key file is the one the local runtime mints pod tokens with",
        )
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the local token key {path}: {exc.strerror}") from None
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(f"the local token key in {path} is shorter than {MIN_KEY_BYTES} bytes")
    return LocalTokenValidator(key)
