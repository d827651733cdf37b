"""`lacewing authz` rows from compiled port policies (pure)."""

from __future__ import annotations

from lacewing.cli.commands.authz import authz_rows
from lacewing.core.policy import (
    DEFAULT_CLUSTER_NETWORKS,
    Authorization,
    IdentityMatch,
    PortPolicy,
    PortRoute,
    default_port_policy,
    parse_networks,
)
from lacewing.core.routes import Match


def test_a_port_nobody_may_reach_says_so_and_audit_says_what_it_counts() -> None:
    networks = parse_networks(DEFAULT_CLUSTER_NETWORKS)
    rows = authz_rows(
        [
            default_port_policy(8080, "deny", networks),
            default_port_policy(8081, "audit", networks),
            default_port_policy(8082, "cluster-unauthenticated", networks),
        ]
    )
    assert rows[0] == ("8080", "default/deny", "(none: denied)", "")
    audit = [r for r in rows if r[0] == "8081"]
    assert audit == [("8081", "default/audit", "default/audit",
                      "any other client (allowed; counted as would-be denied)")]  # fmt: skip
    cluster = [r for r in rows if r[0] == "8082"]
    assert cluster == [
        ("8082", "default/cluster-unauthenticated", "default/cluster-unauthenticated",
         f"any client from {DEFAULT_CLUSTER_NETWORKS.replace(',', ', ')}"),
    ]  # fmt: skip


def test_routes_show_their_own_authorizations_and_what_they_leave_out() -> None:
    bot = Authorization("authorizationpolicy", "books-from-bot",
                        identities=(IdentityMatch(exact="bot.shop"),))  # fmt: skip
    policy = PortPolicy(8080, "server", "web-http", routes=(
        PortRoute("web-books", "gateway.networking.k8s.io", (Match(),), (bot,)),
        PortRoute("web-health", "policy.lacewing.io", (Match(),)),
    ))  # fmt: skip
    assert authz_rows([policy]) == [
        ("8080", "server/web-http", "authorizationpolicy/books-from-bot on httproute/web-books",
         "bot.shop"),
        ("8080", "server/web-http", "httproute/web-health", "only the Server's authorizations"),
        ("8080", "server/web-http", "(no route matches)", "404 for every client"),
    ]  # fmt: skip
