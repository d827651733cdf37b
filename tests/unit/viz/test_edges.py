"""`viz edges` from outbound series: pairs, SECURED and the server identity."""

from __future__ import annotations

from lacewing.viz.edges import edges, edges_query, render_edges


def test_edges_from_series() -> None:
    assert edges_query("deployment", "shop") == (
        'count(response_total{direction="outbound", namespace="shop"}) by (namespace, '
        "deployment, dst_namespace, dst_deployment, server_id, tls, no_tls_reason)"
    )
    web = {"namespace": "shop", "deployment": "web", "dst_namespace": "shop"}
    series = [
        ({**web, "dst_deployment": "emoji", "tls": "true", "server_id": "emoji.shop.sa"}, 2.0),
        ({**web, "dst_deployment": "db", "tls": "no_identity", "no_tls_reason": "no_identity"}, 1),
        ({**web, "tls": "disabled"}, 1.0),  # leaves the mesh: no dst_deployment, not an edge
    ]
    rows = edges("deployment", series)
    assert [(e.dst, e.secured, e.reason, e.server_id) for e in rows] == [
        ("db", False, "no_identity", ""),
        ("emoji", True, "", "emoji.shop.sa"),
    ]
    assert render_edges(rows).splitlines() == [
        "SRC   DST     SRC_NS   DST_NS   SECURED",
        "web   db      shop     shop     no_identity",
        "web   emoji   shop     shop     √",
    ]
