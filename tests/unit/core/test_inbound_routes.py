"""HTTPRoutes with a Server parent: parsing, compiling per port, deciding, the wire form."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lacewing.core.inbound_routes import parse_server_route
from lacewing.core.policy import PolicyError, evaluate, policy_from_dict, policy_to_dict
from lacewing.core.policy_index import PodPorts, PolicyIndex
from lacewing.core.policy_resources import parse_resource
from lacewing.core.routes import RouteError

BOT = "bot.shop.serviceaccount.identity.lacewing.cluster.local"
EVE = "eve.shop.serviceaccount.identity.lacewing.cluster.local"
SERVER_PARENT = {"group": "policy.lacewing.io", "kind": "Server", "name": "web-http"}


def route(name: str, *matches: dict[str, Any], group: str = "gateway.networking.k8s.io",
          parents: list[dict[str, Any]] | None = None, **rule: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": f"{group}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "shop",
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"parentRefs": parents or [SERVER_PARENT],
                 "rules": [{"matches": list(matches), **rule}]},
    }  # fmt: skip


def authz(name: str, target: dict[str, Any], sa: str = "bot") -> dict[str, Any]:
    return {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"targetRef": target,
                 "requiredAuthenticationRefs": [{"kind": "ServiceAccount", "name": sa}]},
    }  # fmt: skip


SERVER = {
    "apiVersion": "policy.lacewing.io/v1beta1",
    "kind": "Server",
    "metadata": {"name": "web-http", "namespace": "shop"},
    "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": "http"},
}
POD = PodPorts("shop", "web-0", {"app": "web"}, ports=(("http", 8080),), probes=((8080, "/ready"),))
GET_API = {"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET"}


def port_policy(*docs: dict[str, Any]) -> Any:
    index = PolicyIndex(tuple(parse_resource(d) for d in docs), (POD,))
    policy = index.port_policy("shop", "web-0", 8080)
    assert policy is not None
    return policy


def test_a_route_without_a_server_parent_is_not_inbound_policys() -> None:
    outbound = route("web", parents=[{"kind": "Service", "name": "web"}])
    assert parse_server_route(outbound) is None
    with pytest.raises(PolicyError, match=r"HTTPRoute shop/web: spec.parentRefs: no parent of"):
        parse_resource(outbound)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {}}]},
         r"spec.rules\[0\].filters: not served on a route whose parents are Servers"),
        ({"backendRefs": [{"name": "web", "port": 80}]}, r"spec.rules\[0\].backendRefs: not"),
        ({"matches": [{"path": {"type": "RegularExpression", "value": "(("}}]},
         r"invalid regular expression"),
    ],
)  # fmt: skip
def test_what_the_inbound_side_cannot_serve_is_refused_in_one_line(
    changes: dict[str, Any], message: str
) -> None:
    doc = route("web")
    doc["spec"]["rules"][0].update(changes)
    with pytest.raises(RouteError, match=message):
        parse_server_route(doc)


def test_a_server_parent_takes_no_port_and_lives_in_the_routes_namespace() -> None:
    with pytest.raises(RouteError, match="takes no port"):
        parse_server_route(route("web", parents=[{**SERVER_PARENT, "port": 80}]))
    with pytest.raises(RouteError, match=r"must be in the route's \(shop\)"):
        parse_server_route(route("web", parents=[{**SERVER_PARENT, "namespace": "ops"}]))


def test_a_route_with_service_and_server_parents_keeps_its_outbound_fields() -> None:
    both = route("web", GET_API, parents=[SERVER_PARENT, {"kind": "Service", "name": "web"}],
                 backendRefs=[{"name": "web", "port": 80}])  # fmt: skip
    parsed = parse_server_route(both)
    assert parsed is not None and parsed.servers == ("web-http",)


def test_a_route_policy_admits_its_route_only_and_the_rest_is_not_found() -> None:
    target = {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "web-api"}
    policy = port_policy(SERVER, route("web-api", GET_API), route("web-health",
                         {"path": {"type": "Exact", "value": "/ready"}}),
                         authz("bot-api", target))  # fmt: skip
    assert policy.probe_paths == ()  # routes switch the probe authorizations off
    ok = evaluate(policy, BOT, "10.0.0.1", method="GET", path="/api/books?x=1")
    assert (ok.allowed, ok.authz_name, ok.route_kind, ok.route_name) == (
        True, "bot-api", "HTTPRoute", "web-api")  # fmt: skip
    wrong = evaluate(policy, EVE, "10.0.0.1", method="GET", path="/api/books")
    assert (wrong.allowed, wrong.not_found, wrong.route_name) == (False, False, "web-api")
    probe = evaluate(policy, None, "10.0.0.1", method="GET", path="/ready")
    assert (probe.allowed, probe.route_name) == (False, "web-health")  # no policy on it
    for method, path in (("POST", "/api"), ("GET", "/apix"), ("GET", "/")):
        missing = evaluate(policy, BOT, "10.0.0.1", method=method, path=path)
        assert (missing.allowed, missing.not_found) == (False, True)
        assert missing.server_labels == (("srv_kind", "server"), ("srv_name", "web-http"))
    # per connection, routes do not apply: Bot has no Server-wide authorization
    assert not evaluate(policy, BOT, "10.0.0.1").allowed


def test_the_targetref_group_picks_the_route_of_that_group() -> None:
    ours = {"group": "policy.lacewing.io", "kind": "HTTPRoute", "name": "web-api"}
    policy = port_policy(SERVER, route("web-api", GET_API), authz("bot-api", ours))
    assert policy.routes[0].authorizations == ()  # the route is the Gateway API's, not ours
    policy = port_policy(SERVER, route("web-api", GET_API, group="policy.lacewing.io"),
                         authz("bot-api", ours))  # fmt: skip
    assert [a.name for a in policy.routes[0].authorizations] == ["bot-api"]


def test_server_authorizations_apply_to_every_route_after_the_routes_own() -> None:
    server_target = {"group": "policy.lacewing.io", "kind": "Server", "name": "web-http"}
    policy = port_policy(SERVER, route("web-api", GET_API), authz("eve-all", server_target, "eve"))
    decision = evaluate(policy, EVE, "10.0.0.1", method="GET", path="/api")
    assert (decision.allowed, decision.authz_name, decision.route_name) == (
        True, "eve-all", "web-api")  # fmt: skip
    assert evaluate(policy, EVE, "10.0.0.1", method="GET", path="/other").not_found


def test_without_routes_decisions_name_linkerds_default_and_probe_routes() -> None:
    policy = port_policy(SERVER)
    probe = evaluate(policy, None, "10.0.0.1", method="GET", path="/ready")
    assert (probe.allowed, probe.authz_name, probe.route_kind, probe.route_name) == (
        True, "probe", "default", "probe")  # fmt: skip
    other = evaluate(policy, None, "10.0.0.1", method="GET", path="/x")
    assert (other.allowed, other.not_found, other.route_name) == (False, False, "default")
    assert evaluate(policy, None, "10.0.0.1").labels == (
        ("srv_kind", "server"),
        ("srv_name", "web-http"),
        ("authz_kind", ""),
        ("authz_name", ""),
    )


def test_routes_go_over_the_wire_and_come_back_the_same() -> None:
    target = {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "web-api"}
    rich = {"path": {"type": "RegularExpression", "value": "/v[0-9]+/.*"},
            "headers": [{"name": "X-Team", "value": "a"}],
            "queryParams": [{"type": "RegularExpression", "name": "q", "value": "b.*"}],
            }  # fmt: skip
    policy = port_policy(SERVER, route("web-api", GET_API, rich),
                         authz("bot-api", target))  # fmt: skip
    back = policy_from_dict(json.loads(json.dumps(policy_to_dict(policy))))
    assert back == policy
    team = {"x-team": "a"}.get
    assert evaluate(back, BOT, "10.0.0.1", method="PUT", path="/v2/x?q=bee", header=team).allowed
    assert evaluate(back, BOT, "10.0.0.1", method="PUT", path="/v2/x?q=cee", header=team).not_found
    with pytest.raises(PolicyError, match=r"policy.routes\[0\].matches\[0\].path.type"):
        policy_from_dict({**policy_to_dict(policy), "routes": [
            {"name": "r", "group": "g", "authorizations": [],
             "matches": [{"path": {"type": "Glob", "value": "/"}}]}]})  # fmt: skip
