"""The proxy's targets: what a connection or request is going to, at each step of the stack.

As in linkerd2-proxy's outbound stack, a request is described three times, each a frozen
(hashable) value so that the service built for it can be cached under it:

    Logical(orig_dst, protocol, authority)   what the application asked for: the original
        |                                    destination (a Service's cluster IP or a pod IP)
        | discovery: which Service is that?
        v
    Concrete(service)                        one backend Service (routes and traffic splits
        |                                    will choose among several; today: the one
        | balancer: which replica?           discovery names for the original destination)
        v
    Endpoint(addr, identity, hint, labels)   one address to connect to, with the TLS identity
                                             to expect there and the `dst_*` metric labels it
                                             carries *as a member of that Service*

Two Services that select the same pod give two `Endpoint`s with one `addr`: their balancers,
loads and labels stay apart. The identity belongs to the pod (the address), so the connector
and the connection pool stay keyed by address.

A `Pick` is the answer of `Side.pick(logical)`: an `Endpoint` and the balancer's ticket for
this one request (or opaque connection). It must end exactly once, whichever way the request
ends: `done(ok, seconds)` when the response head arrived (its latency feeds the balancer),
`fail()` when the endpoint could not be reached or died before answering (failure accrual),
`cancel()` when there is no outcome (client gone, shutdown); later calls do nothing. Without
discovery the ticket is None and the calls are no-ops.

An `Empty` pick (no ticket) says the destination is a Service discovery knows that has no
endpoints: there is nowhere to send the request, so the codec answers 503 itself (gRPC:
UNAVAILABLE) and an opaque connection is closed; its endpoint is the original destination
with the Service's `dst_*` labels, for the metrics of that answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lacewing.core.identity import Identity
from lacewing.proxy.config import Addr

if TYPE_CHECKING:
    from lacewing.proxy.balance import Ticket

__all__ = ["HTTP1", "HTTP2", "OPAQUE", "Concrete", "Empty", "Endpoint", "Labels", "Logical",
           "Pick"]  # fmt: skip

Labels = tuple[tuple[str, str], ...]

HTTP1 = "http1"
HTTP2 = "h2"
OPAQUE = "opaque"


@dataclass(frozen=True, slots=True)
class Logical:
    """What the application asked for: the original destination, and how it speaks to it."""

    orig_dst: Addr
    protocol: str  # HTTP1, HTTP2 or OPAQUE
    authority: str | None = None


@dataclass(frozen=True, slots=True)
class Concrete:
    """One backend Service (`service`: the authority discovery answers for)."""

    service: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address to connect to, as a member of `concrete` (None: no discovery, pass-through)."""

    addr: Addr
    identity: Identity | None = None
    hint: str | None = None  # the protocol the endpoint is known to speak (OPAQUE: no detection)
    labels: Labels = ()
    concrete: Concrete | None = None


class Pick:
    """An endpoint for one request, and the balancer ticket that must end exactly once."""

    __slots__ = ("endpoint", "ticket")

    def __init__(self, endpoint: Endpoint, ticket: Ticket[tuple[str, int]] | None = None) -> None:
        self.endpoint, self.ticket = endpoint, ticket

    @property
    def ended(self) -> bool:
        return self.ticket is None or self.ticket.ended

    def done(self, ok: bool = True, seconds: float | None = None) -> None:
        """The endpoint answered (`ok`), after `seconds` (default: since the pick)."""
        if self.ticket is not None:
            self.ticket.done(ok, seconds)

    def fail(self) -> None:
        """The endpoint could not be reached, or failed before answering."""
        if self.ticket is not None:
            self.ticket.fail()

    def fail_response(self, max_failures: int) -> None:
        """The endpoint answered 5xx, and the route counts that towards ejection."""
        if self.ticket is not None:
            self.ticket.fail_response(max_failures)

    def cancel(self) -> None:
        """No outcome: the request ended for reasons that say nothing about the endpoint."""
        if self.ticket is not None:
            self.ticket.cancel()


class Empty(Pick):
    """No endpoint to go to: a known Service with none ready (`reason` says so)."""

    __slots__ = ("reason",)

    def __init__(self, endpoint: Endpoint, reason: str) -> None:
        super().__init__(endpoint)
        self.reason = reason
