"""Lists with selectors, and watches: live events, replay, 410 Gone, timeouts, bookmarks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import urllib.request
from typing import Any

import pytest
from lightkube import ApiError
from lightkube.operators import exists, in_, not_equal, not_exists, not_in
from lightkube.resources.core_v1 import ConfigMap, Pod
from tests.support.kubeapi import KubeAPI


def _cm(kube_api: KubeAPI, name: str, **labels: str) -> dict[str, Any]:
    return kube_api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "labels": labels},
        }
    )


def _pod(kube_api: KubeAPI, name: str, node: str, phase: str) -> None:
    kube_api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
        }
    )
    pod = kube_api.get("v1", "Pod", name, "default")
    assert pod is not None
    pod["status"]["phase"] = phase
    kube_api.replace_status(pod)


def _names(items: object) -> list[str]:
    return sorted(o.metadata.name for o in items)  # type: ignore[attr-defined]


def test_label_selectors(client: Any, kube_api: KubeAPI) -> None:
    _cm(kube_api, "a", app="web", tier="front")
    _cm(kube_api, "b", app="api")
    _cm(kube_api, "c")

    def ls(**sel: Any) -> list[str]:
        return _names(client.list(ConfigMap, namespace="default", labels=sel))

    assert ls(app="web") == ["a"]
    assert ls(app=in_(["web", "api"])) == ["a", "b"]
    assert ls(app=not_in(["web"])) == sorted(["b", "c"])
    assert ls(tier=exists()) == ["a"]
    assert ls(app=not_exists()) == ["c"]
    with pytest.raises(ApiError) as bad:
        list(client.list(ConfigMap, namespace="default", labels={"a b": "c"}))
    assert bad.value.status.code == 400


def test_not_equal_matches_missing_labels(client: Any, kube_api: KubeAPI) -> None:
    _cm(kube_api, "a", app="web")
    _cm(kube_api, "b", app="api")
    _cm(kube_api, "c")
    assert _names(
        client.list(ConfigMap, namespace="default", labels={"app": not_equal("web")})
    ) == ["b", "c"]


def test_field_selectors(client: Any, kube_api: KubeAPI) -> None:
    _pod(kube_api, "p1", "n1", "Running")
    _pod(kube_api, "p2", "n2", "Running")
    _pod(kube_api, "p3", "n1", "Pending")
    assert _names(client.list(Pod, namespace="default", fields={"spec.nodeName": "n1"})) == [
        "p1",
        "p3",
    ]
    assert _names(
        client.list(Pod, fields={"status.phase": "Running", "metadata.namespace": "default"})
    ) == ["p1", "p2"]
    assert _names(client.list(Pod, fields={"metadata.name": not_equal("p1")})) == ["p2", "p3"]
    with pytest.raises(ApiError) as bad:
        list(client.list(Pod, fields={"spec.unknownField": "x"}))
    assert bad.value.status.code == 400 and "field label not supported" in str(
        bad.value.status.message
    )


def test_list_carries_current_resource_version(client: Any, kube_api: KubeAPI) -> None:
    made = _cm(kube_api, "a")
    listing = client.list(ConfigMap, namespace="default")
    list(listing)
    assert listing.resourceVersion == made["metadata"]["resourceVersion"]


def _raw_watch(kube_api: KubeAPI, query: str, count: int = 100) -> list[dict[str, Any]]:
    """GET a watch URL directly; the JSON lines until `count` of them or the stream's end."""
    ctx = ssl.create_default_context(cadata=kube_api.ca_pem.decode())
    req = urllib.request.Request(
        f"{kube_api.url}/api/v1/namespaces/default/configmaps?watch=1&{query}",
        headers={"Authorization": f"Bearer {kube_api.token}"},
    )
    events: list[dict[str, Any]] = []
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        for line in resp:
            events.append(json.loads(line))
            if len(events) == count:
                break
    return events


def test_watch_from_version_replays_history(kube_api: KubeAPI) -> None:
    start = kube_api.cluster.store.resource_version
    _cm(kube_api, "a", app="web")
    cm = kube_api.get("v1", "ConfigMap", "a", "default")
    assert cm is not None
    cm["data"] = {"k": "v"}
    kube_api.replace(cm)
    kube_api.delete("v1", "ConfigMap", "a", "default")
    events = _raw_watch(kube_api, f"resourceVersion={start}", count=3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > start


def test_watch_too_old_version_is_410_gone(client: Any, kube_api: KubeAPI) -> None:
    kube_api.set_history_window(2)
    start = kube_api.cluster.store.resource_version
    for i in range(4):
        _cm(kube_api, f"c{i}")
    events = _raw_watch(kube_api, f"resourceVersion={start}&timeoutSeconds=1")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
    with pytest.raises(ApiError) as gone:
        next(iter(client.watch(ConfigMap, namespace="default", resource_version=str(start))))
    assert gone.value.status.code == 410


def test_watch_without_version_starts_with_current_objects(kube_api: KubeAPI) -> None:
    _cm(kube_api, "a", app="web")
    _cm(kube_api, "b", app="api")
    _cm(kube_api, "c", app="web")
    kube_api.delete("v1", "ConfigMap", "c", "default")
    events = _raw_watch(kube_api, "labelSelector=app%3Dweb&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]


def test_watch_sends_bookmarks_when_asked(kube_api: KubeAPI) -> None:
    kube_api.set_bookmark_interval(0.2)
    events = _raw_watch(kube_api, "allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=1")
    kinds = {e["type"] for e in events}
    assert kinds == {"BOOKMARK"}
    assert events[-1]["object"]["metadata"]["resourceVersion"] == str(
        kube_api.cluster.store.resource_version
    )


async def test_async_watch_sees_live_changes_and_selector_moves(
    aclient: Any, kube_api: KubeAPI
) -> None:
    seen: list[tuple[str, str, str]] = []
    # From a known version, so the events are the same however late the watch connects.
    start = str(kube_api.cluster.store.resource_version)

    async def consume() -> None:
        stream = aclient.watch(
            ConfigMap, namespace="default", labels={"app": "web"}, resource_version=start
        )
        async with contextlib.aclosing(stream) as events:
            async for kind, obj in events:
                seen.append((kind, obj.metadata.name, (obj.data or {}).get("v", "")))
                if len(seen) == 4:
                    return

    task = asyncio.create_task(consume(), name="watch-consumer")
    await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()

    def writes() -> None:
        _cm(kube_api, "a", app="web")
        _cm(kube_api, "other", app="api")
        cm = kube_api.get("v1", "ConfigMap", "a", "default")
        assert cm is not None
        cm["data"] = {"v": "2"}
        kube_api.replace(cm)
        cm = kube_api.get("v1", "ConfigMap", "a", "default")
        assert cm is not None
        cm["metadata"]["labels"] = {"app": "moved"}
        kube_api.replace(cm)
        kube_api.patch(
            "v1", "ConfigMap", "other", {"metadata": {"labels": {"app": "web"}}}, "default"
        )

    await loop.run_in_executor(None, writes)
    await asyncio.wait_for(task, 5)
    assert seen == [
        ("ADDED", "a", ""),
        ("MODIFIED", "a", "2"),
        ("DELETED", "a", "2"),
        ("ADDED", "other", ""),
    ]


async def test_async_list_and_create(aclient: Any) -> None:
    await aclient.create(
        ConfigMap.from_dict({"metadata": {"name": "x"}, "data": {"a": "b"}}), namespace="default"
    )
    names = [cm.metadata.name async for cm in aclient.list(ConfigMap, namespace="default")]
    assert names == ["x"]
    got = await aclient.get(ConfigMap, "x", namespace="default")
    assert got.data == {"a": "b"}


def test_lists_page_with_limit_and_continue(client: Any, kube_api: KubeAPI) -> None:
    for i in range(5):
        _cm(kube_api, f"c{i}")
    ctx = ssl.create_default_context(cadata=kube_api.ca_pem.decode())
    pages: list[list[str]] = []
    token = ""
    while True:
        req = urllib.request.Request(
            f"{kube_api.url}/api/v1/namespaces/default/configmaps?limit=2&continue={token}",
            headers={"Authorization": f"Bearer {kube_api.token}"},
        )
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            body = json.loads(resp.read())
        pages.append([i["metadata"]["name"] for i in body["items"]])
        token = body["metadata"].get("continue", "")
        if not token:
            break
    assert pages == [["c0", "c1"], ["c2", "c3"], ["c4"]]
    assert _names(client.list(ConfigMap, namespace="default", chunk_size=2)) == [
        f"c{i}" for i in range(5)
    ]
