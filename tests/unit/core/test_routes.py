"""HTTPRoute parsing, rejection reasons and Gateway API match precedence."""

from __future__ import annotations

from typing import Any

import pytest

from lacewing.core.route_table import Request, RouteTable
from lacewing.core.routes import (
    RouteError,
    missing_backends,
    parse_route,
    route_conditions,
)


def route(name: str, rules: list[dict[str, Any]], *, created: str = "2026-01-01T00:00:00Z",
          group: str = "gateway.networking.k8s.io", annotations: dict[str, str] | None = None,
          ) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": f"{group}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created,
                     "annotations": annotations or {}},
        "spec": {"parentRefs": [{"kind": "Service", "group": "", "name": "web", "port": 80}],
                 "rules": rules},
    }  # fmt: skip


def to(backend: str) -> list[dict[str, Any]]:
    return [{"name": backend, "port": 80}]


# Two routes on the web Service; `backend` is where each rule sends.
TABLE = RouteTable([
    parse_route(route("api", [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": to("api")},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api/v2"}}],
         "backendRefs": to("api-v2")},
        {"matches": [{"path": {"type": "Exact", "value": "/api/health"}}],
         "backendRefs": to("health")},
        {"matches": [{"path": {"type": "RegularExpression", "value": "/items/[0-9]+"}}],
         "backendRefs": to("item")},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}, "method": "POST"}],
         "backendRefs": to("api-write")},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"},
                      "headers": [{"name": "X-Canary", "value": "yes"}]}],
         "backendRefs": to("canary")},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"},
                      "headers": [{"name": "x-canary", "value": "yes"},
                                  {"name": "x-user", "type": "RegularExpression",
                                   "value": "admin-.*"}]}],
         "backendRefs": to("canary-admin")},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/search"},
                      "queryParams": [{"name": "beta", "value": "1"}]}],
         "backendRefs": to("search-beta")},
    ])),
    # newer: loses ties against `api`, wins where it is more specific
    parse_route(route("catch", [
        {"backendRefs": to("default")},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": to("late")},
    ], created="2026-02-01T00:00:00Z")),
])  # fmt: skip


@pytest.mark.parametrize(
    ("method", "target", "headers", "backend"),
    [
        ("GET", "/", {}, "default"),
        ("GET", "/api", {}, "api"),  # the older route wins the tie with `catch`'s /api
        ("GET", "/api/users", {}, "api"),
        ("GET", "/apiary", {}, "default"),  # prefixes match whole path segments
        ("GET", "/api/v2/users", {}, "api-v2"),  # the longest prefix
        ("GET", "/api/v2", {}, "api-v2"),
        ("GET", "/api/health", {}, "health"),  # Exact beats any prefix
        ("GET", "/api/health/deep", {}, "api"),
        ("POST", "/api/users", {}, "api-write"),  # a method match beats header matches
        ("GET", "/api/users", {"x-canary": "yes"}, "canary"),
        ("GET", "/api/users", {"x-canary": "no"}, "api"),
        ("GET", "/api/users", {"x-canary": "yes", "x-user": "admin-7"}, "canary-admin"),
        ("GET", "/api/users", {"x-canary": "yes", "x-user": "bob"}, "canary"),
        ("GET", "/items/42", {}, "item"),
        ("GET", "/items/42x", {}, "default"),  # a regex must match the whole path
        ("GET", "/search?q=a&beta=1", {}, "search-beta"),
        ("GET", "/search?beta=0", {}, "default"),
        ("GET", "/search", {}, "default"),
    ],
)
def test_precedence_picks_the_backend(
    method: str, target: str, headers: dict[str, str], backend: str
) -> None:
    path, _, query = target.partition("?")
    found = TABLE.find(Request(method, path, headers.get, query))
    assert found is not None
    assert found.rule.backends[0].name == backend


def test_no_route_matches_outside_the_rules() -> None:
    table = RouteTable([parse_route(route("only", [
        {"matches": [{"path": {"type": "Exact", "value": "/x"}}]}]))])  # fmt: skip
    assert table.find(Request("GET", "/y", {}.get)) is None
    assert table.find(Request("GET", "/x", {}.get)) is not None


def test_our_copy_of_the_group_is_accepted_and_rules_default() -> None:
    parsed = parse_route(route("own", [{"backendRefs": [
        {"name": "web", "port": 80, "weight": 90}, {"name": "web-canary", "port": 80,
                                                    "weight": 10}],
        "filters": [{"type": "RequestHeaderModifier",
                     "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}],
                                               "remove": ["x-b"]}}],
        "timeouts": {"request": "200ms", "backendRequest": "100ms"}}],
        group="policy.lacewing.io", annotations={"retry.lacewing.io/http": "5xx",
                                                 "retry.lacewing.io/limit": "3"}))  # fmt: skip
    rule = parsed.rules[0]
    assert parsed.group == "policy.lacewing.io"
    assert [(b.name, b.weight) for b in rule.backends] == [("web", 90), ("web-canary", 10)]
    assert rule.timeout == pytest.approx(0.2) and rule.backend_timeout == pytest.approx(0.1)
    assert rule.request_headers is not None and rule.request_headers.remove == ("x-b",)
    assert rule.retry is not None and rule.retry.limit == 3 and 503 in rule.retry.statuses
    assert rule.matches[0].path.kind == "PathPrefix"


@pytest.mark.parametrize(
    ("rules", "reason", "text"),
    [
        ([{"matches": [{"path": {"type": "RegularExpression", "value": "/(["}}]}],
         "UnsupportedValue", "spec.rules[0].matches[0].path.value: invalid regular expression"),
        ([{"filters": [{"type": "URLRewrite"}]}],
         "UnsupportedValue", "spec.rules[0].filters[0].type: unknown filter 'URLRewrite'"),
        ([{"backendRefs": [{"name": "a", "port": 80, "weight": 0},
                           {"name": "b", "port": 80, "weight": 0}]}],
         "UnsupportedValue", "spec.rules[0].backendRefs: the weights sum to zero"),
        ([{"timeouts": {"request": "soon"}}],
         "UnsupportedValue", "spec.rules[0].timeouts.request: 'soon' is not a duration"),
        ([{"backendRefs": [{"kind": "ConfigMap", "name": "a"}]}],
         "InvalidKind", "spec.rules[0].backendRefs[0]: only backendRefs of kind Service"),
        ([{"matches": [{"method": "FETCH"}]}],
         "UnsupportedValue", "spec.rules[0].matches[0].method: 'FETCH' is not an HTTP method"),
    ],
)  # fmt: skip
def test_invalid_routes_have_one_reason(
    rules: list[dict[str, Any]], reason: str, text: str
) -> None:
    with pytest.raises(RouteError) as caught:
        parse_route(route("bad", rules))
    assert caught.value.reason == reason
    assert str(caught.value).startswith(text)
    assert "\n" not in str(caught.value)
    accepted = route_conditions(caught.value)[0]
    assert (accepted["type"], accepted["status"], accepted["reason"]) == (
        "Accepted",
        "False",
        reason,
    )


def test_a_route_without_a_service_parent_matches_nothing() -> None:
    obj = route("gw", [])
    obj["spec"]["parentRefs"] = [{"name": "my-gateway"}]  # kind Gateway by default
    with pytest.raises(RouteError) as caught:
        parse_route(obj)
    assert caught.value.reason == "NoMatchingParent"


def test_missing_backend_is_named() -> None:
    parsed = parse_route(
        route("r", [{"backendRefs": [{"name": "web", "port": 80}, {"name": "gone", "port": 80}]}])
    )
    known = {("web", "shop", 80)}
    message = missing_backends(parsed, lambda n, ns, p: (n, ns, p) in known)
    assert message == "spec.rules[0].backendRefs[1]: Service shop/gone port 80 does not exist"
    assert missing_backends(parsed, lambda n, ns, p: True) is None


def test_bad_retry_annotations_are_rejected() -> None:
    with pytest.raises(RouteError, match=r"retry.lacewing.io/http\]: 'sometimes'"):
        parse_route(route("r", [], annotations={"retry.lacewing.io/http": "5xx,sometimes"}))


def test_fault_injection_is_our_groups_filter() -> None:
    spec = {"abort": {"percent": 10, "httpStatus": 503},
            "delay": {"percent": 5, "fixedDelay": "1s"}}  # fmt: skip
    rules = [{"filters": [{"type": "FaultInjection", "faultInjection": spec}]}]
    fault = parse_route(route("f", rules, group="policy.lacewing.io")).rules[0].fault
    assert fault is not None
    assert (fault.abort_percent, fault.abort_status, fault.delay_percent, fault.delay) == (
        10.0, 503, 5.0, 1.0)  # fmt: skip
    with pytest.raises(RouteError, match=r"FaultInjection is a policy\.lacewing\.io filter"):
        parse_route(route("f", rules))
    with pytest.raises(RouteError, match=r"abort\.percent: must be a number from 0 to 100"):
        parse_route(route("f", [{"filters": [{"type": "FaultInjection", "faultInjection": {
            "abort": {"percent": 120}}}]}], group="policy.lacewing.io"))  # fmt: skip


def test_failure_accrual_annotations() -> None:
    on = {"balancer.lacewing.io/failure-accrual": "consecutive"}
    assert parse_route(route("r", [{}], annotations=on)).rules[0].failure_accrual == 7
    five = {**on, "balancer.lacewing.io/failure-accrual-consecutive-max-failures": "5"}
    assert parse_route(route("r", [], annotations=five)).rules[0].failure_accrual == 5
    assert parse_route(route("r", [])).rules[0].failure_accrual is None
    with pytest.raises(RouteError, match="the one kind served is 'consecutive'"):
        parse_route(route("r", [], annotations={"balancer.lacewing.io/failure-accrual": "ewma"}))


def test_the_segment_index_agrees_with_walking_every_match() -> None:
    """The per-first-segment lists give what the whole precedence-ordered list gives."""
    paths = [("PathPrefix", "/a"), ("PathPrefix", "/a/b/"), ("Exact", "/"), ("Exact", "/a/b"),
             ("RegularExpression", "/a.*"), ("PathPrefix", "/"), ("PathPrefix", "/c"),
             ("Exact", "/c/")]  # fmt: skip
    many = [
        parse_route(route(f"r{i}", [{"matches": [{"path": {"type": kind, "value": value}}],
                                     "backendRefs": to(f"b{i}")}]))
        for i, (kind, value) in enumerate(paths)
    ]  # fmt: skip
    table = RouteTable(many)
    for path in ("/", "/a", "/a/", "/a/b", "/a/b/c", "/ab", "/c", "/c/", "/c/d", "/d", "//a"):
        walked = next((f for f, m in table._entries if m.path.matches(path)), None)
        assert table.match("GET", path, {}.get) == walked, path


def test_routes_sharing_a_name_and_time_in_both_groups_or_kinds_build_one_table() -> None:
    # Both groups' copies of one route (or an HTTPRoute and a GRPCRoute of one name), made in
    # the same second: their keys used to tie, and sorting then compared the entries (TypeError)
    rules = [{"matches": [{"path": {"type": "PathPrefix", "value": "/a"}}], "backendRefs": to("x")}]
    grpc = route("same", [{"backendRefs": to("g")}])
    grpc["kind"] = "GRPCRoute"
    table = RouteTable([parse_route(route("same", rules)),
                        parse_route(route("same", rules, group="policy.lacewing.io")),
                        parse_route(grpc), parse_route(route("same", rules))])  # fmt: skip
    assert len(table.entries()) == 4
    found = table.find(Request("GET", "/a/b", {}.get))
    assert found is not None and found.route.group == "gateway.networking.k8s.io"
    assert found.route.kind == "HTTPRoute"
