"""Authorities, endpoint sets, diffs and the wire form of discovery events."""

from __future__ import annotations

import json

import pytest

from lacewing.core.discovery import (
    Added,
    AddressAuthority,
    AuthorityError,
    Endpoint,
    EndpointSet,
    NoEndpoints,
    Removed,
    ServiceAuthority,
    apply,
    diff,
    event_from_dict,
    event_to_dict,
    parse_authority,
)

WEB = ServiceAuthority("web", "shop", 80)


@pytest.mark.parametrize(
    "text",
    [
        "web.shop.svc.cluster.local:80",
        "web.shop.svc.cluster.local.:80",
        "web.shop.svc:80",
        "web.shop:80",
        "web:80",
        "WEB.Shop:80",
    ],
)
def test_every_short_form_names_the_same_service(text: str) -> None:
    assert parse_authority(text, default_namespace="shop") == WEB
    assert str(WEB) == "web.shop.svc.cluster.local:80"


def test_ip_authorities_are_addresses() -> None:
    assert parse_authority("10.43.0.10:8080") == AddressAuthority("10.43.0.10", 8080)
    assert parse_authority("[fd00::1]:443") == AddressAuthority("fd00::1", 443)
    assert str(AddressAuthority("fd00::1", 443)) == "[fd00::1]:443"


def test_custom_cluster_domain() -> None:
    got = parse_authority("web.shop.svc.k3s.lan:80", cluster_domain="k3s.lan")
    assert got == ServiceAuthority("web", "shop", 80, "k3s.lan")
    with pytest.raises(AuthorityError):  # not our cluster domain: not a Service name
        parse_authority("web.shop.svc.cluster.local:80", cluster_domain="k3s.lan")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("web", "HOST:PORT"),
        ("web.shop:http", "port"),
        ("web.shop:70000", "port"),
        ("web:80", "namespace"),
        ("www.example.com:80", "not a Service name"),
        ("we_b.shop:80", "DNS label"),
    ],
)
def test_bad_authorities_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(AuthorityError, match=words):
        parse_authority(text)


def ep(ip: str, port: int = 8080, **kw: object) -> Endpoint:
    return Endpoint(ip, port, **kw)  # type: ignore[arg-type]


def test_diff_sends_only_what_changed_and_apply_rebuilds_the_set() -> None:
    a, b, c = ep("10.0.0.1"), ep("10.0.0.2"), ep("10.0.0.3")
    first = EndpointSet([a, b])
    assert diff(None, first) == [Added((a, b))]
    b2 = ep("10.0.0.2", identity="web.shop.serviceaccount.identity.lacewing.cluster.local")
    second = EndpointSet([b2, c])
    events = diff(first, second)
    assert events == [Removed((a.key,)), Added((b2, c))]
    state = first
    for event in events:
        state = apply(state, event)
    assert state == second
    assert diff(second, second) == []


def test_emptying_a_set_is_one_no_endpoints_event() -> None:
    full = EndpointSet([ep("10.0.0.1")])
    assert diff(full, EndpointSet()) == [NoEndpoints(True)]
    assert diff(None, EndpointSet(), exists=False) == [NoEndpoints(False)]
    assert diff(full, EndpointSet(), labels={"service": "web", "namespace": "shop"}) == [
        NoEndpoints(True, (("namespace", "shop"), ("service", "web")))
    ]
    assert diff(EndpointSet(), EndpointSet()) == []
    assert apply(full, NoEndpoints(True)) == EndpointSet()


def test_events_survive_the_wire() -> None:
    endpoint = ep(
        "10.0.0.1",
        weight=2,
        identity="web.shop.serviceaccount.identity.lacewing.cluster.local",
        opaque=True,
        labels={"namespace": "shop", "pod": "web-0", "deployment": "web"},
    )
    empty = NoEndpoints(True, (("namespace", "shop"), ("service", "web")))
    for event in (Added((endpoint,)), Removed((endpoint.key,)), NoEndpoints(False), empty):
        line = json.dumps(event_to_dict(event))
        assert event_from_dict(json.loads(line)) == event
    assert event_to_dict(Removed((("10.0.0.1", 80),))) == {
        "type": "REMOVED",
        "endpoints": [{"address": "10.0.0.1", "port": 80}],
    }


def added(**fields: object) -> dict[str, object]:
    return {"type": "ADDED", "endpoints": [{"address": "a", "port": 1, **fields}]}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([], "JSON object"),
        ({"type": "MOVED", "endpoints": []}, "unknown event type"),
        ({"type": "ADDED"}, "expected a list"),
        ({"type": "ADDED", "endpoints": [{"address": "a", "port": 0}]}, "port"),
        ({"type": "ADDED", "endpoints": [{"address": "a", "port": 1, "weight": -1}]}, "weight"),
        (
            {"type": "ADDED", "endpoints": [{"address": "a", "port": 1, "labels": {"a": 1}}]},
            "labels",
        ),
        ({"type": "NO_ENDPOINTS", "exists": "yes"}, "exists"),
        ({"type": "NO_ENDPOINTS", "exists": True, "labels": ["web"]}, "labels"),
        ({"type": "NO_ENDPOINTS", "exists": True, "labels": {"service": 1}}, "labels"),
    ],
)
def test_malformed_events_are_refused_with_the_field(data: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        event_from_dict(data)
