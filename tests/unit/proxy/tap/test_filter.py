"""The tap request's filter and the event encoding (pure)."""

from __future__ import annotations

import json

import pytest

from lacewing.proxy.tap.filter import (
    TapEvent,
    TapFilter,
    TapRequestError,
    encode_event,
    parse_filter,
)

CLI = "cli.t.serviceaccount.identity.lacewing.c"
EVENT = TapEvent(
    direction="inbound", method="GET", authority="srv:8080", path="/x/1?q=2", status=200,
    latency_ms=1.23456, source={"identity": CLI, "namespace": "t"},
    destination={"namespace": "t", "pod": "srv-0"}, tls="true", started=10.0, ended=10.00123,
)  # fmt: skip


def test_empty_request_matches_everything() -> None:
    assert parse_filter(b"") == TapFilter() == parse_filter(b"{}")
    assert TapFilter().matches(EVENT)


@pytest.mark.parametrize(
    ("body", "matches"),
    [
        ({"path": "/x"}, True),
        ({"path": "/x/1"}, True),
        ({"path": "/y"}, False),
        ({"method": "get"}, True),  # methods compare upper-case
        ({"method": "POST"}, False),
        ({"authority": "srv:8080"}, True),
        ({"authority": "srv"}, False),
        ({"source": {"namespace": "t"}}, True),
        ({"source": {"namespace": "u"}}, False),
        ({"destination": {"pod": "srv-0", "namespace": "t"}}, True),
        ({"destination": {"pod": "srv-1"}}, False),
        ({"destination": {"deployment": "srv"}}, False),  # an end without the key: no match
        ({"path": "/x", "method": "GET", "source": {"identity": EVENT.source["identity"]}}, True),
    ],
)
def test_filter_matches(body: dict[str, object], matches: bool) -> None:
    assert parse_filter(json.dumps(body)).matches(EVENT) is matches


def test_filter_round_trips_through_its_request_body() -> None:
    f = TapFilter(destination=(("deployment", "srv"), ("namespace", "t")), path="/x",
                  method="GET", max_events=5, rps=2.5)  # fmt: skip
    assert parse_filter(json.dumps(f.to_json())) == f


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "not JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"paht": "/x"}', "unknown key 'paht'"),
        (b'{"path": "x"}', "must start with /"),
        (b'{"max": 0}', "max must be an integer"),
        (b'{"max": true}', "max must be an integer"),
        (b'{"rps": -1}', "rps must be a positive number"),
        (b'{"source": {"node": "a"}}', "unknown source key 'node'"),
        (b'{"destination": "srv"}', "'destination' must be an object"),
        (b'{"method": ""}', "'method' must be a non-empty string"),
    ],
)
def test_bad_requests_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(TapRequestError, match=message):
        parse_filter(body)


def test_event_is_one_json_line() -> None:
    line = encode_event(EVENT)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "direction": "inbound", "method": "GET", "authority": "srv:8080", "path": "/x/1?q=2",
        "status": 200, "latency_ms": 1.235, "source": EVENT.source,
        "destination": EVENT.destination, "tls": "true", "started": 10.0, "ended": 10.00123,
    }  # fmt: skip
    grpc = TapEvent("outbound", "POST", "a", "/s/M", 200, 1.0, grpc_status=14)
    assert json.loads(encode_event(grpc))["grpc_status"] == 14
