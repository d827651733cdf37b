"""The policy validator's decisions, AdmissionReview in and out (the HTTPS path is integration)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lacewing.controller.policy import Validator, index_from_objects
from lacewing.core.policy_index import PolicyConfig


def review(obj: Any, operation: str = "CREATE", kind: str = "Server") -> bytes:
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "policy.lacewing.io", "version": "v1beta1", "kind": kind},
                "operation": operation,
                "namespace": "shop",
                "object": obj,
            },
        }
    ).encode()


def server(name: str, port: Any, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "policy.lacewing.io/v1beta1",
        "kind": "Server",
        "metadata": {"name": name},  # the API server fills in the namespace in request.namespace
        "spec": {"podSelector": {"matchLabels": labels or {"app": "web"}}, "port": port},
    }


def test_a_server_with_port_70000_is_refused_with_the_reason() -> None:
    validator = Validator()
    status, body = validator.review(review(server("web-http", 70000)))
    assert status == 200
    assert body["response"]["uid"] == "u-1"
    assert body["response"]["allowed"] is False
    assert body["response"]["status"]["message"] == (
        "Server shop/web-http: spec.port: 70000 is not a port number (1-65535) or a port name"
    )
    assert validator.refused == 1


def test_valid_resources_and_deletes_are_allowed() -> None:
    validator = Validator()
    assert validator.review(review(server("web-http", "http")))[1]["response"]["allowed"]
    assert validator.review(review(server("web-http", 70000), operation="DELETE"))[1]["response"][
        "allowed"
    ]
    # Another group's kind is none of this webhook's business.
    other = json.loads(review({"kind": "Pod"}))
    other["request"]["kind"] = {"group": "", "version": "v1", "kind": "Pod"}
    assert Validator().review(json.dumps(other).encode())[1]["response"]["allowed"]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"apiVersion":"v1"}'])
def test_malformed_reviews_are_400_with_a_status(body: bytes) -> None:
    status, answer = Validator().review(body)
    assert status == 400 and answer["kind"] == "Status" and answer["code"] == 400
    assert answer["message"].startswith("malformed AdmissionReview")


def test_overlapping_servers_are_refused_against_the_current_index() -> None:
    pod = {
        "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web", "tier": "x"}},
        "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
    }
    existing = {**server("web-http", "http"), "metadata": {"name": "web-http", "namespace": "shop"}}
    index, _ = index_from_objects([existing], [pod], [], PolicyConfig())
    validator = Validator(lambda: index)
    _, body = validator.review(review(server("by-number", 8080, {"tier": "x"})))
    assert body["response"]["allowed"] is False
    assert body["response"]["status"]["message"] == (
        "Server shop/by-number: spec: selects port 8080 of pod web-0, which Server web-http "
        "already selects; Servers must not overlap"
    )
    # Updating the Server that holds the port is fine; so is one on another port.
    assert validator.review(review(server("web-http", 8080), "UPDATE"))[1]["response"]["allowed"]
    assert validator.review(review(server("other", 9090)))[1]["response"]["allowed"]
