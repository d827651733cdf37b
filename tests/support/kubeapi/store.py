"""The cluster state: objects, one resource-version counter, an event history and watches.

Objects live in one dict keyed by (group, plural, namespace, name); every stored object is a
private deep copy, and every object handed out is a fresh copy, so callers can never alias the
store. One lock guards everything, because the store is used from the server's event loop
thread and, in-process, from the test's thread.

Versions: a single counter (`resource_version`) is bumped by every write and stamped on the
object as `metadata.resourceVersion`, so versions are totally ordered across kinds, as with etcd.
A PUT or patch that carries a resourceVersion other than the stored one is a 409 Conflict.
`metadata.generation` starts at 1 and grows when anything outside metadata and status changes.
A write that changes nothing keeps the object's version and emits no event.

Watches: each write appends (version, type, object, previous object) to a history of
`history_window` events (older events are dropped and the version of the newest dropped one
is remembered as `compacted`) and offers the event to every open `Watch` (`watches.py`),
which filters it by kind, namespace and selectors. A watch from version N replays the history
after N; if N is older than `compacted`, the history cannot say what happened, and the watch
gets `Expired` (410). A watch without a version (or "0") starts with a synthetic ADDED per
current object.

Custom resources are checked against their CRD's schema (`schema.py`) on every write;
`field_validation(strict=True)` makes unknown fields an error instead of being pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from tests.support.kubeapi import apply, defaults, schema
from tests.support.kubeapi.errors import ApiError
from tests.support.kubeapi.patch import json_merge_patch, json_patch, strategic_merge_patch
from tests.support.kubeapi.resources import Registry, ResourceType, crd_types
from tests.support.kubeapi.selectors import Matcher
from tests.support.kubeapi.watches import Event, Watch

Key = tuple[str, str, str, str]  # group, plural, namespace ("" if cluster-scoped), name
Clock = Callable[[], datetime]

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}
# Fields a write may never change once set.
_IMMUTABLE_META = ("uid", "creationTimestamp")


def _now(clock: Clock) -> str:
    return clock().strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """All objects of one emulated cluster (see the module docstring)."""

    def __init__(
        self, registry: Registry, history_window: int = 1000, clock: Clock | None = None
    ) -> None:
        self.registry = registry
        self.history_window = history_window
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._rv = 1
        self._history: deque[Event] = deque()
        self._compacted = 0
        self._watches: set[Watch] = set()
        self._next_ip = int(ipaddress.ip_address("10.96.0.10"))
        self.closed = False
        # Namespaces deleted over HTTP stay Terminating this long, so a `kubectl delete -f`
        # that lists a namespace before its contents can still delete those contents.
        self.namespace_grace = 0.3
        self._terminating: dict[str, float] = {}
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._strict = False  # see field_validation()

    # ------------------------------------------------------------------ reads

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._objects.get(self._key(rt, namespace, name))
            if obj is None:
                raise ApiError.not_found(rt.plural, name, rt.group)
            return copy.deepcopy(obj)

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        labels: Matcher | None = None,
        fields: Matcher | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        with self._lock:
            items = [
                copy.deepcopy(obj)
                for obj in self._iter(rt, namespace)
                if (labels is None or labels(obj)) and (fields is None or fields(obj))
            ]
            return items, self._rv

    def _iter(self, rt: ResourceType, namespace: str | None) -> Iterator[dict[str, Any]]:
        for (group, plural, ns, _), obj in sorted(self._objects.items()):
            if (group, plural) == (rt.group, rt.plural) and (not namespace or ns == namespace):
                yield obj

    def allocate_cluster_ip(self) -> str:
        with self._lock:
            self._next_ip += 1
            return str(ipaddress.ip_address(self._next_ip))

    # ------------------------------------------------------------------ writes

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        obj: dict[str, Any],
        dry_run: bool = False,
        manager: str = "unknown",
    ) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        with self._lock:
            self._check_type(rt, obj)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            name = meta.get("name", "")
            ns = self._resolve_namespace(rt, namespace, obj, name, creating=True)
            causes = defaults.check_name(rt.kind, name)
            if causes:
                raise ApiError.invalid(rt.kind, name, causes, rt.group)
            key = self._key(rt, ns, name)
            if key in self._objects:
                raise ApiError.already_exists(rt.plural, name, rt.group)
            for field in ("uid", "resourceVersion", "deletionTimestamp", "managedFields"):
                meta.pop(field, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now(self.clock)
            meta["generation"] = 1
            self._admit(rt, obj)
            apply.record_update(None, obj, manager, rt.builtin)
            if dry_run:
                meta["resourceVersion"] = str(self._rv)
                return obj
            return self._commit(rt, key, obj, None)

    def replace(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        dry_run: bool = False,
        subresource: str | None = None,
        manager: str = "unknown",
    ) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        with self._lock:
            self._check_type(rt, obj)
            body_name = obj.setdefault("metadata", {}).setdefault("name", name)
            if body_name != name:
                raise ApiError.bad_request(
                    f"the name of the object ({body_name}) does not match the name on the URL "
                    f"({name})"
                )
            ns = self._resolve_namespace(rt, namespace, obj, name, creating=False)
            key = self._key(rt, ns, name)
            old = self._objects.get(key)
            if old is None:
                raise ApiError.not_found(rt.plural, name, rt.group)
            return self._update(rt, key, old, obj, dry_run, subresource, manager)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        body: Any,
        dry_run: bool = False,
        subresource: str | None = None,
        manager: str = "unknown",
        force: bool = False,
    ) -> dict[str, Any]:
        """Patch `name` with `body`, already decoded (a dict, or a list for JSON patch)."""
        with self._lock:
            ns = namespace if rt.namespaced else None
            key = self._key(rt, ns, name)
            old = self._objects.get(key)
            if patch_type == "apply":
                if not isinstance(body, dict):
                    raise ApiError.bad_request("an apply patch must be an object")
                if old is None:
                    created = self.create(rt, ns, body, dry_run, manager)
                    return self._own_by_apply(rt, key, created, body, manager, dry_run)
                new = apply.server_side_apply(old, body, manager, force, rt.builtin)
                return self._update(rt, key, old, new, dry_run, subresource, None)
            if old is None:
                raise ApiError.not_found(rt.plural, name, rt.group)
            if patch_type == "merge":
                new = json_merge_patch(copy.deepcopy(old), body)
            elif patch_type == "json":
                new = json_patch(old, body)
            elif patch_type == "strategic":
                if not rt.builtin:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media "
                        "types include: application/json-patch+json, "
                        "application/merge-patch+json, application/apply-patch+yaml",
                    )
                new = strategic_merge_patch(old, body)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"unknown patch type {patch_type}")
            if not isinstance(new, dict):
                raise ApiError(422, "Invalid", "the patch did not produce an object")
            return self._update(rt, key, old, new, dry_run, subresource, manager)

    def _own_by_apply(
        self,
        rt: ResourceType,
        key: Key,
        created: dict[str, Any],
        config: dict[str, Any],
        manager: str,
        dry_run: bool,
    ) -> dict[str, Any]:
        owners: apply.Ownership = {(manager, "Apply"): apply.leaves(config, rt.builtin)}
        apply.write_ownership(created, owners, {(manager, "Apply"): rt.api_version})
        if not dry_run:
            self._objects[key]["metadata"]["managedFields"] = copy.deepcopy(
                created["metadata"]["managedFields"]
            )
        return created

    def _update(
        self,
        rt: ResourceType,
        key: Key,
        old: dict[str, Any],
        new: dict[str, Any],
        dry_run: bool,
        subresource: str | None,
        manager: str | None,
    ) -> dict[str, Any]:
        old_meta, meta = old["metadata"], new.setdefault("metadata", {})
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != old_meta["resourceVersion"]:
            raise ApiError.conflict(rt.plural, old_meta["name"], rt.group)
        for field in ("name", "namespace", *_IMMUTABLE_META):
            if field in old_meta:
                meta[field] = old_meta[field]
        if rt.status_subresource:
            if subresource == "status":
                new = {**copy.deepcopy(old), "status": new.get("status", {})}
                meta = new["metadata"]
            elif "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        self._check_type(rt, new)
        meta["generation"] = old_meta.get("generation", 1)
        self._admit(rt, new)
        if manager is not None:  # an Update; an Apply (None) brings its own managedFields
            apply.record_update(old, new, manager, rt.builtin)
        if _spec_of(new) != _spec_of(old):
            meta["generation"] = old_meta.get("generation", 1) + 1
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if _comparable(new) == _comparable(old) or dry_run:
            return copy.deepcopy(new)
        return self._commit(rt, key, new, old)

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        dry_run: bool = False,
        orphan: bool = False,
        graceful: bool = False,
    ) -> dict[str, Any]:
        """Delete an object; `graceful` Namespaces go Terminating first (see `finalize_due`)."""
        with self._lock:
            key = self._key(rt, namespace if rt.namespaced else None, name)
            obj = self._objects.get(key)
            if obj is None:
                raise ApiError.not_found(rt.plural, name, rt.group)
            if dry_run:
                return copy.deepcopy(obj)
            if rt.kind == "Namespace" and rt.builtin and graceful:
                return self._terminate(rt, key, obj)
            if rt.kind == "Namespace":
                self._terminating.pop(name, None)
            self._remove(rt, key)
            if rt.kind == "Namespace":
                self._delete_where(lambda k, o: k[2] == name)
            elif rt.kind == "CustomResourceDefinition":
                gone = {(t.group, t.plural) for t in self.registry.drop_crd(name)}
                self._delete_where(lambda k, o: (k[0], k[1]) in gone)
            if not orphan:
                self._collect_garbage(obj["metadata"]["uid"])
            return copy.deepcopy(obj)

    def _terminate(self, rt: ResourceType, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if name in self._terminating:
            return copy.deepcopy(obj)
        self._terminating[name] = time.monotonic() + self.namespace_grace
        new = copy.deepcopy(obj)
        new["metadata"]["deletionTimestamp"] = _now(self.clock)
        new["status"] = {"phase": "Terminating"}
        return self._commit(rt, key, new, obj)

    def finalize_due(self, now: float | None = None) -> None:
        """Finish deleting Terminating namespaces whose grace period is over (with contents).

        `now` is a `time.monotonic()` reading; tests pass a later one instead of sleeping.
        """
        with self._lock:
            now = time.monotonic() if now is None else now
            for name, deadline in list(self._terminating.items()):
                if deadline <= now:
                    ns_type = self.registry.by_kind("v1", "Namespace")
                    assert ns_type is not None
                    try:
                        self.delete(ns_type, None, name)
                    except ApiError:
                        self._terminating.pop(name, None)

    def _delete_where(self, doomed: Callable[[Key, dict[str, Any]], bool]) -> None:
        for key, obj in sorted(self._objects.items()):
            if key in self._objects and doomed(key, obj):
                self._remove(self._type_of(key), key)

    def _collect_garbage(self, owner_uid: str) -> None:
        """Delete dependents (ownerReferences) of a deleted object, recursively."""
        for key, obj in sorted(self._objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if key in self._objects and any(r.get("uid") == owner_uid for r in refs):
                self._remove(self._type_of(key), key)
                self._collect_garbage(obj["metadata"]["uid"])

    def _remove(self, rt: ResourceType, key: Key) -> None:
        obj = self._objects.pop(key)
        self._rv += 1
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._emit(Event(self._rv, "DELETED", rt, gone, obj))

    # ------------------------------------------------------------------ internals

    def _type_of(self, key: Key) -> ResourceType:
        """The type an object was stored as (still known after its CRD is gone)."""
        return self._types[(key[0], key[1])]

    def _key(self, rt: ResourceType, namespace: str | None, name: str) -> Key:
        return (rt.group, rt.plural, (namespace or "") if rt.namespaced else "", name)

    def _check_type(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        api_version = obj.setdefault("apiVersion", rt.api_version)
        kind = obj.setdefault("kind", rt.kind)
        group = api_version.rpartition("/")[0]
        if kind != rt.kind or group != rt.group:
            raise ApiError.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
                if group != rt.group
                else f'kind "{kind}" does not match the expected kind "{rt.kind}"'
            )
        obj["apiVersion"] = rt.api_version

    def _resolve_namespace(
        self,
        rt: ResourceType,
        namespace: str | None,
        obj: dict[str, Any],
        name: str,
        creating: bool,
    ) -> str | None:
        meta = obj["metadata"]
        if not rt.namespaced:
            meta.pop("namespace", None)
            return None
        ns = namespace or meta.get("namespace") or "default"
        if meta.get("namespace") and meta["namespace"] != ns:
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = ns
        if creating and ("", "namespaces", "", ns) not in self._objects:
            raise ApiError.not_found("namespaces", ns)
        if creating and ns in self._terminating:
            raise ApiError(
                403,
                "Forbidden",
                f'{rt.plural} "{name}" is forbidden: unable to create new content in namespace '
                f"{ns} because it is being terminated",
            )
        return ns

    @contextlib.contextmanager
    def field_validation(self, strict: bool) -> Iterator[None]:
        """Within the block, unknown fields of custom resources are refused, not pruned.

        The block holds the store's lock, so the setting cannot leak to other threads' writes.
        """
        with self._lock:
            before, self._strict = self._strict, strict
            try:
                yield
            finally:
                self._strict = before

    def crd_of(self, rt: ResourceType) -> dict[str, Any] | None:
        """The CustomResourceDefinition behind a custom kind (None for built-ins)."""
        if rt.builtin:
            return None
        key = ("apiextensions.k8s.io", "customresourcedefinitions", "", f"{rt.plural}.{rt.group}")
        with self._lock:
            crd = self._objects.get(key)
            return copy.deepcopy(crd) if crd else None

    def _check_schema(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        crd = self.crd_of(rt)
        found = schema.crd_schema(crd, rt.version) if crd else None
        if not found:
            return
        result = schema.check(found, obj)
        if result.unknown and self._strict:
            fields = ", ".join(f'unknown field "{u}"' for u in result.unknown)
            raise ApiError.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {fields}"
            )
        if result.causes:
            raise ApiError.invalid(
                rt.kind, obj["metadata"].get("name", ""), result.causes, rt.group
            )
        obj.clear()
        obj.update(result.obj)

    def _admit(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if not rt.builtin:
            self._check_schema(rt, obj)
        defaulter = defaults.DEFAULTERS.get(rt.kind) if rt.builtin else None
        if defaulter:
            defaulter(obj, self)
        validator = defaults.VALIDATORS.get(rt.kind) if rt.builtin else None
        causes = validator(obj) if validator else []
        if causes:
            raise ApiError.invalid(rt.kind, obj["metadata"].get("name", ""), causes, rt.group)

    def _commit(
        self, rt: ResourceType, key: Key, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._objects[key] = obj
        self._types[(rt.group, rt.plural)] = rt
        if rt.kind == "CustomResourceDefinition" and rt.builtin:
            self.registry.set_crd(obj["metadata"]["name"], crd_types(obj))
        self._emit(Event(self._rv, "MODIFIED" if old else "ADDED", rt, copy.deepcopy(obj), old))
        return copy.deepcopy(obj)

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        while len(self._history) > max(self.history_window, 0):
            self._compacted = self._history.popleft().resource_version
        for watch in list(self._watches):
            seen = watch.translate(event)
            if seen:
                watch.push(seen)

    # ------------------------------------------------------------------ watches

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        since: str | None,
        labels: Matcher,
        fields: Matcher,
        loop: asyncio.AbstractEventLoop,
    ) -> Watch:
        """Open a watch; raises a 410 `Expired` ApiError when `since` is too old."""
        with self._lock:
            watch = Watch(
                self.unwatch, rt, namespace if rt.namespaced else None, labels, fields, loop
            )
            if not since or since == "0":
                for obj in self._iter(rt, watch.namespace):
                    if watch.matches(obj):
                        watch.push(("ADDED", copy.deepcopy(obj)))
            else:
                if not since.isdigit():
                    raise ApiError.bad_request(f'invalid resource version "{since}"')
                start = int(since)
                if start < self._compacted:
                    raise ApiError(
                        410, "Expired", f"too old resource version: {start} ({self._compacted})"
                    )
                for event in self._history:
                    seen = watch.translate(event) if event.resource_version > start else None
                    if seen:
                        watch.push(seen)
            self._watches.add(watch)
            return watch

    def unwatch(self, watch: Watch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def set_history_window(self, size: int) -> None:
        with self._lock:
            self.history_window = size
            while len(self._history) > max(size, 0):
                self._compacted = self._history.popleft().resource_version

    def close(self) -> None:
        """End every open watch (the store is being replaced by a fresh one)."""
        with self._lock:
            self.closed = True
            for watch in list(self._watches):
                watch.push(None)
            self._watches.clear()


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {
        k: v
        for k, v in obj.get("metadata", {}).items()
        if k not in ("managedFields", "resourceVersion")
    }
    fields = [
        (e.get("manager"), e.get("operation"), e.get("fieldsV1"))
        for e in obj.get("metadata", {}).get("managedFields") or []
    ]
    return {**obj, "metadata": meta, "managedFields": fields}
