"""Patch, selector and field-ownership logic on plain dicts (no server)."""

from __future__ import annotations

from typing import Any

import pytest
import tests.support.kubeapi as kubeapi
from tests.support.kubeapi.apply import leaves, server_side_apply
from tests.support.kubeapi.errors import ApiError
from tests.support.kubeapi.patch import json_merge_patch, json_patch, strategic_merge_patch
from tests.support.kubeapi.selectors import (
    match_selector_object,
    parse_field_selector,
    parse_label_selector,
)


def test_public_surface() -> None:
    assert sorted(kubeapi.__all__) == ["ApiError", "KubeAPI", "Kubelet", "start_kube_api"]
    for name in kubeapi.__all__:
        assert getattr(kubeapi, name) is not None


def test_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3]}
    assert json_merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3]}
    assert target["c"] == {"d": "e", "f": "g"}  # not modified in place


def test_json_patch_move_copy_and_escapes() -> None:
    doc = {"metadata": {"annotations": {"a/b": "1"}}, "list": [1, 2, 3]}
    out = json_patch(
        doc,
        [
            {"op": "copy", "from": "/metadata/annotations/a~1b", "path": "/copied"},
            {"op": "move", "from": "/list/0", "path": "/list/-"},
            {"op": "remove", "path": "/list/0"},
        ],
    )
    assert out == {"metadata": {"annotations": {"a/b": "1"}}, "list": [3, 1], "copied": "1"}
    with pytest.raises(ApiError) as bad:
        json_patch(doc, [{"op": "explode", "path": "/x"}])
    assert bad.value.code == 400


def test_strategic_set_element_order_and_retain_keys() -> None:
    live = {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}
    patch = {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "a", "image": "3"}],
    }
    out = strategic_merge_patch(live, patch)
    assert out == {"containers": [{"name": "b", "image": "2"}, {"name": "a", "image": "3"}]}
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    out = strategic_merge_patch(
        {"strategy": strategy}, {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}
    )
    assert out == {"strategy": {"type": "Recreate"}}


def test_strategic_primitive_lists() -> None:
    live = {"metadata": {"finalizers": ["a", "b"]}, "args": ["x"]}
    out = strategic_merge_patch(live, {"metadata": {"finalizers": ["c"]}, "args": ["y"]})
    assert out == {"metadata": {"finalizers": ["a", "b", "c"]}, "args": ["y"]}
    out = strategic_merge_patch(live, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert out["metadata"]["finalizers"] == ["b"]


def test_service_ports_merge_by_port() -> None:
    live = {"spec": {"ports": [{"port": 80, "name": "http"}]}}
    out = strategic_merge_patch(live, {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}})
    assert out == {"spec": {"ports": [{"port": 80, "name": "http", "targetPort": 8080}]}}


def test_webhook_configurations_merge_webhooks_by_name() -> None:
    # what kubectl apply sends when only a caBundle changed (`lacewing upgrade | kubectl apply`)
    live = {"webhooks": [{"name": "a", "clientConfig": {"caBundle": "old", "service": {}},
                          "rules": [{"operations": ["CREATE"]}]}]}  # fmt: skip
    patch = {"$setElementOrder/webhooks": [{"name": "a"}],
             "webhooks": [{"name": "a", "clientConfig": {"caBundle": "new"}}]}  # fmt: skip
    out = strategic_merge_patch(live, patch)
    assert out == {"webhooks": [{"name": "a", "clientConfig": {"caBundle": "new", "service": {}},
                                 "rules": [{"operations": ["CREATE"]}]}]}  # fmt: skip


def test_label_selector_grammar() -> None:
    sel = parse_label_selector("app in (web, api),tier!=db,!legacy,env")

    def obj(**labels: str) -> dict[str, Any]:
        return {"metadata": {"labels": labels}}

    assert sel(obj(app="web", env="prod"))
    assert not sel(obj(app="web", env="prod", legacy="1"))
    assert not sel(obj(app="web", env="prod", tier="db"))
    assert not sel(obj(app="other", env="prod"))
    assert not sel(obj(app="api"))
    with pytest.raises(ApiError):
        parse_label_selector("app in web")


def test_field_selector_per_kind() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}
    assert parse_field_selector("spec.nodeName=n1,status.phase!=Pending", "Pod")(pod)
    with pytest.raises(ApiError):
        parse_field_selector("spec.nodeName=n1", "ConfigMap")


def test_selector_objects_for_webhooks() -> None:
    sel = {
        "matchLabels": {"inject": "enabled"},
        "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["system"]}],
    }
    assert match_selector_object(sel, {"inject": "enabled"})
    assert not match_selector_object(sel, {"inject": "enabled", "tier": "system"})
    assert match_selector_object(None, {})


def test_apply_ownership_and_pruning() -> None:
    live: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    first = server_side_apply(live, {**live, "data": {"a": "1", "b": "2"}}, "mgr", False, True)
    assert leaves(first) >= {("f:data", "f:a"), ("f:data", "f:b")}
    second = server_side_apply(first, {**live, "data": {"a": "1"}}, "mgr", False, True)
    assert second["data"] == {"a": "1"}
    shared = server_side_apply(second, {**live, "data": {"a": "1"}}, "other", False, True)
    assert {m["manager"] for m in shared["metadata"]["managedFields"]} == {"mgr", "other"}
    with pytest.raises(ApiError) as conflict:
        server_side_apply(shared, {**live, "data": {"a": "2"}}, "third", False, True)
    assert conflict.value.code == 409 and "2 conflicts" in conflict.value.message
