"""AdmissionReview handling without a network: malformed input, non-pods, lookups, caching."""

from __future__ import annotations

import base64
import json
from typing import Any

import yaml
from tests.unit.controller.injector.helpers import ENABLED, namespace, pod, values

from lacewing.controller.injector.admission import Admission
from lacewing.controller.injector.patch import apply_ops
from lacewing.errors import ClusterUnreachable
from lacewing.install.values import values_to_dict


class FakeLookup:
    def __init__(self, *objs: dict[str, Any]) -> None:
        self.objs = list(objs)
        self.calls = 0
        self.down = False

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        self.calls += 1
        if self.down:
            raise ClusterUnreachable("cannot reach the Kubernetes API")
        for obj in self.objs:
            meta = obj["metadata"]
            same_ns = namespace is None or meta.get("namespace") == namespace
            if obj["kind"] == kind and meta["name"] == name and same_ns:
                return obj
        return None


def _config(log_level: str = "info") -> dict[str, Any]:
    stored = values_to_dict(values(proxy={"logLevel": log_level}))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "lacewing-config", "namespace": "lacewing"},
        "data": {"values": yaml.safe_dump(stored), "version": "0.1.0"},
    }


def _review(obj: Any, kind: str = "Pod", uid: str = "u-1", ns: str = "shop") -> bytes:
    request = {
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": kind},
        "operation": "CREATE",
        "namespace": ns,
        "object": obj,
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_malformed_reviews_get_a_clear_400() -> None:
    admission = Admission(FakeLookup(), "lacewing")
    cases = {
        b"not json": "the body is not JSON",
        b"[1, 2]": "not a JSON object",
        b'{"apiVersion": "v1", "kind": "Pod"}': "expected apiVersion admission.k8s.io/v1",
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}': "request.uid",
    }
    for body, words in cases.items():
        reply = await admission.review(body)
        assert reply.status == 400
        assert reply.body["kind"] == "Status" and reply.body["code"] == 400
        assert words in reply.body["message"], reply.body


async def test_pod_in_enabled_namespace_gets_the_patch() -> None:
    lookup = FakeLookup(namespace("shop", ENABLED), _config("debug"))
    admission = Admission(lookup, "lacewing")
    the_pod = pod()
    reply = await admission.review(_review(the_pod))
    assert reply.status == 200
    response = reply.body["response"]
    assert response["uid"] == "u-1" and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    after = apply_ops(the_pod, ops)
    proxy = after["spec"]["containers"][0]
    assert proxy["name"] == "lacewing-proxy"
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["LACEWING_PROXY_LOG_LEVEL"] == "debug"  # from the cluster's install values
    assert admission.decisions == {"injected": 1}


async def test_other_kinds_and_operations_pass_untouched() -> None:
    admission = Admission(FakeLookup(namespace("shop", ENABLED), _config()), "lacewing")
    reply = await admission.review(_review({"metadata": {"name": "svc"}}, kind="Service"))
    assert reply.body["response"] == {"uid": "u-1", "allowed": True}
    reply = await admission.review(_review("not a pod"))
    response = reply.body["response"]
    assert response["allowed"] is True and "patch" not in response
    assert "not a Pod" in response["warnings"][0]


async def test_services_inherit_the_namespace_opaque_ports() -> None:
    opaque = {**ENABLED, "config.lacewing.io/opaque-ports": "3306"}
    admission = Admission(FakeLookup(namespace("shop", opaque), _config()), "lacewing")
    service = {"metadata": {"name": "db", "namespace": "shop"}, "spec": {"ports": [{"port": 1}]}}
    reply = await admission.review(_review(service, kind="Service"))
    ops = json.loads(base64.b64decode(reply.body["response"]["patch"]))
    after = apply_ops(service, ops)
    assert after["metadata"]["annotations"] == {"config.lacewing.io/opaque-ports": "3306"}
    reply = await admission.review(_review(after, kind="Service"))  # its own value stays
    assert reply.body["response"] == {"uid": "u-1", "allowed": True}


async def test_unreachable_api_admits_without_proxy_and_says_why() -> None:
    lookup = FakeLookup()
    lookup.down = True
    admission = Admission(lookup, "lacewing")
    reply = await admission.review(_review(pod()))
    response = reply.body["response"]
    assert response["allowed"] is True and "patch" not in response
    assert "cannot reach the Kubernetes API" in response["warnings"][0]


async def test_namespace_is_read_per_pod_and_values_cached_for_ttl() -> None:
    clock = Clock()
    lookup = FakeLookup(namespace("shop", ENABLED), _config())
    admission = Admission(lookup, "lacewing", ttl=5.0, clock=clock)
    for uid in ("a", "b", "c"):
        reply = await admission.review(_review(pod(), uid=uid))
        assert "patch" in reply.body["response"]
    assert lookup.calls == 4  # the namespace each time, the ConfigMap once
    lookup.objs[0] = namespace("shop")  # annotation removed: seen at once
    reply = await admission.review(_review(pod(), uid="d"))
    ops = json.loads(base64.b64decode(reply.body["response"]["patch"]))
    assert apply_ops(pod(), ops)["metadata"]["annotations"]["lacewing.io/inject-skipped"]
    lookup.objs[0] = namespace("shop", ENABLED)
    lookup.objs[1] = _config("debug")  # an upgrade: seen once the TTL has passed
    clock.now = 4.0
    reply = await admission.review(_review(pod(), uid="e"))
    assert _log_level(reply) == "info"
    clock.now = 6.0
    reply = await admission.review(_review(pod(), uid="f"))
    assert _log_level(reply) == "debug"
    clock.now = 12.0
    lookup.objs.pop()  # lacewing-config gone: the last values read stay in use
    reply = await admission.review(_review(pod(), uid="g"))
    assert _log_level(reply) == "debug"


def _log_level(reply: Any) -> str:
    ops = json.loads(base64.b64decode(reply.body["response"]["patch"]))
    env = apply_ops(pod(), ops)["spec"]["containers"][0]["env"]
    return str(next(e["value"] for e in env if e["name"] == "LACEWING_PROXY_LOG_LEVEL"))
