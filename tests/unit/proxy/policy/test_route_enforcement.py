"""Route-scoped authorization enforced by the real proxy on loopback (see test_enforcement).

A Server with HTTPRoutes serves only what its routes match: the proxy answers anything else
404 without the app seeing it (`inbound_http_route_not_found_total`), a route's
AuthorizationPolicy admits requests of that route only, and the authz counters name the
route (`route_kind`, `route_name`). Without routes the built-in `default` route is named.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.proxy.policy.test_enforcement import LOOPBACK_AUTHZ, Bed, _server, bed
from tests.unit.proxy.sockets.harness import Client

__all__ = ["bed"]  # the fixture, shared


def _route(name: str, *matches: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "parentRefs": [{"group": "policy.lacewing.io", "kind": "Server", "name": "web-http"}],
            "rules": [{"matches": list(matches)}],
        },
    }


def _route_authz(route: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": f"{route}-lo", "namespace": "shop"},
        "spec": {
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route},
            "requiredAuthenticationRefs": [
                {"group": "policy.lacewing.io", "kind": "NetworkAuthentication", "name": "lo"}
            ],
        },
    }


NET = LOOPBACK_AUTHZ[1]  # the NetworkAuthentication "lo" (127.0.0.0/8)


async def _ask(bed: Bed, head: bytes) -> int:
    client = await Client.open(bed.proxy.bound["inbound"].port)
    try:
        await client.send(head)
        status, _, _ = await client.response()
        return status
    finally:
        await client.close()


def _get(path: str, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: web\r\n{extra}Content-Length: 0\r\n\r\n".encode()


async def _until_status(bed: Bed, head: bytes, status: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while await _ask(bed, head) != status:
            await asyncio.sleep(0.05)


def _text(bed: Bed) -> str:
    return "\n".join(bed.proxy.metrics.render())


async def test_a_route_policy_admits_its_route_only_and_other_requests_get_404(bed: Bed) -> None:
    api = _route("web-api", {"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET"})
    admin = _route("web-admin", {"path": {"type": "Exact", "value": "/admin"}})
    bed.publish(_server(bed.app.port), api, admin, _route_authz("web-api"), NET)
    await _until_status(bed, _get("/api/books"), 200)
    seen = bed.app.received
    assert await _ask(bed, _get("/admin")) == 403  # a route, but nobody may use it
    assert await _ask(bed, _get("/elsewhere")) == 404  # no route
    assert await _ask(bed, _get("/api/books", "POST")) == 404  # the route is GET only
    assert await _ask(bed, _get("/apix")) == 404  # prefixes match whole segments
    assert bed.app.received == seen  # none of the four reached the app
    assert bed.count("inbound_http_route_not_found_total") == 3
    text = _text(bed)
    assert (f'inbound_http_route_not_found_total{{target_addr="127.0.0.1:{bed.app.port}",'
            'srv_kind="server",srv_name="web-http",tls="disabled"} 3') in text  # fmt: skip
    assert ('authz_kind="authorizationpolicy",authz_name="web-api-lo",route_kind="HTTPRoute",'
            'route_name="web-api"') in text  # fmt: skip
    assert 'authz_kind="",authz_name="",route_kind="HTTPRoute",route_name="web-admin"' in text


async def test_a_server_level_policy_applies_to_every_route_and_routes_can_match_headers(
    bed: Bed,
) -> None:
    team = _route("web-team", {"headers": [{"name": "X-Team", "value": "a"}]})
    bed.publish(_server(bed.app.port), team, *LOOPBACK_AUTHZ)
    await _until_status(bed, _get("/anything", extra="x-team: a\r\n"), 200)
    assert await _ask(bed, _get("/anything", extra="x-team: b\r\n")) == 404
    assert 'authz_name="loopback-in",route_kind="HTTPRoute",route_name="web-team"' in _text(bed)


async def test_removing_the_routes_brings_back_the_default_route(bed: Bed) -> None:
    api = _route("web-api", {"path": {"type": "PathPrefix", "value": "/api"}})
    bed.publish(_server(bed.app.port), api, *LOOPBACK_AUTHZ)
    await _until_status(bed, _get("/elsewhere"), 404)
    bed.publish(_server(bed.app.port), *LOOPBACK_AUTHZ)
    await _until_status(bed, _get("/elsewhere"), 200)
    assert 'authz_name="loopback-in",route_kind="default",route_name="default"' in _text(bed)
