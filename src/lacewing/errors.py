"""The one exception tree of lacewing.

Every error that lacewing raises on purpose derives from `LacewingError`. The CLI's entry
point catches `LacewingError` and prints its message (and its `hint`, if any) on one line each,
never a traceback; anything else is a bug and keeps its traceback.

    LacewingError
    ├── UsageError              a bad flag, value or file the user gave (exit 2)
    │   └── ConfigError         invalid configuration (env var, values, --set)
    ├── ClusterError            the Kubernetes API could not be used
    │   ├── ClusterUnreachable  no kubeconfig, or the API server did not answer
    │   └── AlreadyInstalled    the control plane namespace exists already
    ├── CertificateError        unreadable, malformed, expired or mismatched certificates
    ├── IdentityError           a certificate request was refused by the identity service
    ├── ProtocolError           a peer sent bytes that break a protocol (HTTP, control plane)
    └── RuntimeEnvError         the machine cannot do what was asked (not root, no iptables)
"""

from __future__ import annotations

__all__ = [
    "AlreadyInstalled",
    "CertificateError",
    "ClusterError",
    "ClusterUnreachable",
    "ConfigError",
    "IdentityError",
    "LacewingError",
    "ProtocolError",
    "RuntimeEnvError",
    "UsageError",
]


class LacewingError(Exception):
    """Base of every deliberate lacewing error.

    `hint` says what to do about it; `exit_code` is what the CLI exits with.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(LacewingError):
    """The user gave a bad flag, value or file."""

    exit_code = 2


class ConfigError(UsageError):
    """Configuration (environment, values, --set) is invalid."""


class ClusterError(LacewingError):
    """The Kubernetes API could not be used for what was asked."""


class ClusterUnreachable(ClusterError):
    """No kubeconfig, or the API server did not answer."""


class AlreadyInstalled(ClusterError):
    """The control plane namespace exists already."""


class CertificateError(LacewingError):
    """Certificates are unreadable, malformed, expired or do not chain."""


class IdentityError(LacewingError):
    """The identity service refused a certificate request."""


class ProtocolError(LacewingError):
    """A peer sent bytes that break a protocol."""


class RuntimeEnvError(LacewingError):
    """The machine cannot do what was asked (not root, not Linux, a binary is missing)."""
