"""The decision adapter: connection verdicts and per-request decisions, current policy."""

from __future__ import annotations

from lacewing.core.policy import (
    Authorization,
    IdentityMatch,
    PortPolicy,
    default_port_policy,
    parse_networks,
)
from lacewing.proxy.policy import DENY_GRPC_STATUS, DENY_HTTP_STATUS, InboundGate

NETS = parse_networks("10.0.0.0/8")
BOT = "bot.shop.serviceaccount.identity.lacewing.cluster.local"
SERVER = PortPolicy(
    8080,
    "server",
    "web-http",
    "HTTP/1",
    (Authorization("authorizationpolicy", "bot-in", NETS, False, (IdentityMatch(exact=BOT),)),),
    probe_paths=("/ready",),
)


def test_connection_verdicts() -> None:
    policies = {8080: SERVER, 5432: default_port_policy(5432, "deny", NETS)}
    gate = InboundGate(policies.__getitem__)
    ok = gate.connection(8080, BOT, "10.1.2.3")
    assert ok.accept and not ok.http_only
    assert ok.decision.labels == (
        ("srv_kind", "server"),
        ("srv_name", "web-http"),
        ("authz_kind", "authorizationpolicy"),
        ("authz_name", "bot-in"),
    )
    probes_only = gate.connection(8080, None, "10.1.2.3")  # maybe the kubelet: HTTP decides
    assert probes_only.accept and probes_only.http_only and not probes_only.decision.allowed
    assert gate.request(8080, None, "10.1.2.3", "GET", "/ready").authz_name == "probe"
    denied = gate.request(8080, None, "10.1.2.3", "GET", "/orders")
    assert not denied.allowed and denied.labels[3] == ("authz_name", "")
    closed = gate.connection(5432, BOT, "10.1.2.3")  # deny, no probes: closed at once
    assert not closed.accept and closed.decision.srv_name == "deny"
    assert (DENY_HTTP_STATUS, DENY_GRPC_STATUS) == (403, 7)


def test_opaque_ports_never_wait_for_http() -> None:
    opaque = PortPolicy(8080, "server", "db", "opaque", (), probe_paths=("/ready",))
    assert not InboundGate(lambda _: opaque).connection(8080, None, "10.1.2.3").accept


def test_requests_see_a_policy_change_on_a_live_connection() -> None:
    current = {8080: SERVER}
    gate = InboundGate(current.__getitem__)
    assert gate.connection(8080, BOT, "10.1.2.3").accept
    current[8080] = default_port_policy(8080, "deny", NETS)
    assert not gate.request(8080, BOT, "10.1.2.3", "GET", "/orders").allowed
