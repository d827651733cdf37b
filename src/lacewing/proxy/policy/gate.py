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
  * `accept=True, http_only=True`: the client is not authorized, but the port has kubelet
    probe paths: keep the connection only if it turns out to be HTTP, and let each request
    decide (a connection detected as opaque is closed and counted as a TCP deny).
- `request(port, client_identity, client_ip, method, path) -> Decision`, per HTTP request
  (HTTP/1 and HTTP/2 alike), against the policy current *now* (so a policy change applies
  to the next request of a long-lived connection): `allowed=False` -> answer 403 (gRPC:
  HTTP 200 with `grpc-status: 7`, PERMISSION_DENIED), count
  `inbound_http_authz_deny_total{decision.labels}`; otherwise count
  `inbound_http_authz_allow_total`.

Opaque and TLS-passthrough ports (`PortPolicy.protocol` "opaque" / "TLS") never get
`http_only`: nothing on them is an HTTP request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from lacewing.core.policy import Decision, PortPolicy, evaluate

__all__ = ["DENY_GRPC_STATUS", "DENY_HTTP_STATUS", "ConnectionVerdict", "InboundGate"]

DENY_HTTP_STATUS: Final = 403
DENY_GRPC_STATUS: Final = 7  # PERMISSION_DENIED
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
        if policy.probe_paths and policy.protocol not in _NOT_HTTP:
            return ConnectionVerdict(True, decision, http_only=True)
        return ConnectionVerdict(False, decision)

    def request(
        self, port: int, client_identity: str | None, client_ip: str, method: str, path: str
    ) -> Decision:
        return evaluate(self._policy_of(port), client_identity, client_ip, method=method, path=path)
