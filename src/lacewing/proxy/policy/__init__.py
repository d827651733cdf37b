"""Inbound authorization in the proxy: the policy client and the decision it feeds.

`client.PolicyClient` streams each inbound port's `PortPolicy` from the policy controller
(keeping the last one when it is down, the default when it never answered);
`gate.InboundGate` turns (port, client identity, client IP[, method, path]) into the
decision to enforce. Enforcement itself (closing connections, answering 403, the
`inbound_*_authz_*_total` counters) lives in the accept path and the HTTP stack.
"""

from lacewing.proxy.policy.client import PolicyClient, PortWatch
from lacewing.proxy.policy.gate import (
    DENY_GRPC_STATUS,
    DENY_HTTP_STATUS,
    NOT_FOUND_GRPC_STATUS,
    NOT_FOUND_HTTP_STATUS,
    ConnectionVerdict,
    InboundGate,
    counter,
)

__all__ = [
    "DENY_GRPC_STATUS",
    "DENY_HTTP_STATUS",
    "NOT_FOUND_GRPC_STATUS",
    "NOT_FOUND_HTTP_STATUS",
    "ConnectionVerdict",
    "InboundGate",
    "PolicyClient",
    "PortWatch",
    "counter",
]
