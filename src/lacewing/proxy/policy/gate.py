"""The inbound authorization decision the accept path and the HTTP stack ask, per port.

Pure: no I/O. `InboundGate` wraps a lookup `port -> PortPolicy` (the `PolicyClient`'s
current policy for that port: the controller's last word, or the default when it never
answered) and answers two questions with `lacewing.core.policy.evaluate`:

- `connection(port, client_identity, client_ip) -> ConnectionVerdict`, once per accepted
  inbound connection, after TLS (identity None when the client is not meshed):
  * `accept=False`: close the connection before a byte reaches the app, count
    `inbound_tcp_authz_deny_total{verdict.decision.labels}`;
  * `accept=True, http_only=False`: the client is authorized on this port (count
    `inbound_tcp_authz_allow_total`); `decision.audit_denied` says it would have been denied
    and is admitted only because the port is in audit mode;
  * `accept=True, http_only=True`: the client is not authorized on the port as a whole,
    but the port has kubelet probe paths or HTTPRoutes (whose own authorizations may admit
    it): keep the connection only if it turns out to be HTTP, and let each request decide
    (a connection detected as opaque is closed and counted as a TCP deny).
- `request(port, client_identity, client_ip, method, path, header) -> Decision`, per HTTP
  request (HTTP/1 and HTTP/2 alike), against the policy current *now* (so a policy change
  applies to the next request of a long-lived connection): `not_found` (the port's Server
  has HTTPRoutes and none matches) -> answer 404 (gRPC: `grpc-status: 5`, NOT_FOUND),
  count `inbound_http_route_not_found_total{decision.server_labels}`; `allowed=False` ->
  answer 403 (gRPC: HTTP 200 with `grpc-status: 7`, PERMISSION_DENIED), count
  `inbound_http_authz_deny_total{decision.labels}`; otherwise count
  `inbound_http_authz_allow_total`. `counter(decision)` names the family.

Opaque and TLS-passthrough ports (`PortPolicy.protocol` "opaque" / "TLS") never get
`http_only`: nothing on them is an HTTP request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from lacewing.core.policy import Decision, PortPolicy, evaluate

__all__ = [
    "DENY_GRPC_STATUS",
    "DENY_HTTP_STATUS",
    "NOT_FOUND_GRPC_STATUS",
    "NOT_FOUND_HTTP_STATUS",
    "ConnectionVerdict",
    "InboundGate",
    "counter",
]

DENY_HTTP_STATUS: Final = 403
DENY_GRPC_STATUS: Final = 7  # PERMISSION_DENIED
NOT_FOUND_HTTP_STATUS: Final = 404
NOT_FOUND_GRPC_STATUS: Final = 5  # NOT_FOUND
_NOT_HTTP: Final = ("opaque", "TLS")


@dataclass(frozen=True)
class ConnectionVerdict:
    accept: bool
    decision: Decision
    http_only: bool = False  # accepted only for HTTP probe requests


class InboundGate:
    """Connection and request decisions against the current policy of each port."""

    def __init__(self, policy_of: Callable[[int], PortPolicy]) -> None:
        self._policy_of = policy_of

    def connection(
        self, port: int, client_identity: str | None, client_ip: str
    ) -> ConnectionVerdict:
        policy = self._policy_of(port)
        decision = evaluate(policy, client_identity, client_ip)
        if decision.allowed:
            return ConnectionVerdict(True, decision)
        if (policy.probe_paths or policy.routes) and policy.protocol not in _NOT_HTTP:
            return ConnectionVerdict(True, decision, http_only=True)
        return ConnectionVerdict(False, decision)

    def request(
        self,
        port: int,
        client_identity: str | None,
        client_ip: str,
        method: str,
        path: str,
        header: Callable[[str], str | None] | None = None,
    ) -> Decision:
        policy = self._policy_of(port)
        if header is None:
            return evaluate(policy, client_identity, client_ip, method=method, path=path)
        return evaluate(policy, client_identity, client_ip, method=method, path=path, header=header)


class _Decided(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def not_found(self) -> bool: ...

    @property
    def labels(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def server_labels(self) -> tuple[tuple[str, str], ...]: ...


def counter(decision: _Decided) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The family that counts an HTTP request's decision, and its policy labels."""
    if decision.not_found:
        return "inbound_http_route_not_found_total", decision.server_labels
    if decision.allowed:
        return "inbound_http_authz_allow_total", decision.labels
    return "inbound_http_authz_deny_total", decision.labels
