"""Server-side apply and field ownership (`metadata.managedFields`).

Each object carries `managedFields`: per manager and operation (Apply or Update), the set of
fields it owns, in the API's FieldsV1 shape (`{"f:spec": {"f:replicas": {}}}`; an item of a
keyed list is `k:{"name":"app"}`). Internally a field set is a set of paths, each a tuple of
those FieldsV1 keys down to a leaf (a scalar, or a list that is not keyed, which is atomic).

- An Update (create, PUT, the three client patch formats) makes its manager own every leaf it
  added or changed and takes those leaves away from other managers, as the real server does.
- An Apply merges the applied configuration onto the live object (keyed lists merged by key
  for built-in kinds, every list atomic for custom resources), then removes the leaves this
  manager applied last time but no longer applies, unless another manager still owns them.
  Setting a leaf to a different value than the live one, when another manager owns it, is a
  409 Conflict naming the manager and field; `force=true` takes the field over instead.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from tests.support.kubeapi.errors import ApiError
from tests.support.kubeapi.patch import merge_key, strategic_merge_patch

Path = tuple[str, ...]
_MISSING = object()
_UNMANAGED_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
    }
)


def leaves(obj: dict[str, Any], keyed: bool = True) -> set[Path]:
    """The field set of an object: every leaf path, as FieldsV1 keys."""
    out: set[Path] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _UNMANAGED_META}
            if not value:
                continue
        _collect(value, (f"f:{key}",), (key,), keyed, out)
    return out


def _collect(value: Any, path: Path, names: tuple[str, ...], keyed: bool, out: set[Path]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _collect(sub, (*path, f"f:{key}"), (*names, key), keyed, out)
        return
    key = merge_key(names) if keyed and isinstance(value, list) else None
    if key and all(isinstance(i, dict) and key in i for i in value):
        for item in value:
            item_path = (*path, "k:" + json.dumps({key: item[key]}, separators=(",", ":")))
            for sub_key, sub in item.items():
                _collect(sub, (*item_path, f"f:{sub_key}"), (*names, sub_key), keyed, out)
        return
    out.add(path)


def _step(cur: Any, part: str) -> Any:
    if part.startswith("f:") and isinstance(cur, dict):
        return cur.get(part[2:], _MISSING)
    if part.startswith("k:") and isinstance(cur, list):
        want = json.loads(part[2:])
        for item in cur:
            if isinstance(item, dict) and all(item.get(k) == v for k, v in want.items()):
                return item
    return _MISSING


def value_at(obj: Any, path: Path) -> Any:
    cur = obj
    for part in path:
        cur = _step(cur, part)
        if cur is _MISSING:
            return _MISSING
    return cur


def remove_path(obj: dict[str, Any], path: Path) -> None:
    """Delete the leaf at `path`, then any map or keyed item it leaves empty (or key-only)."""
    trail: list[Any] = [obj]
    for part in path[:-1]:
        nxt = _step(trail[-1], part)
        if nxt is _MISSING:
            return
        trail.append(nxt)
    last = path[-1]
    if last.startswith("f:") and isinstance(trail[-1], dict):
        trail[-1].pop(last[2:], None)
    for depth in range(len(trail) - 1, 0, -1):
        node, parent, part = trail[depth], trail[depth - 1], path[depth - 1]
        if part.startswith("k:"):
            if set(node) <= set(json.loads(part[2:])):
                parent.remove(node)
        elif isinstance(node, dict) and not node and depth > 1:
            parent.pop(part[2:], None)


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, sub in tree.items():
        if key == ".":
            continue
        if isinstance(sub, dict) and any(k != "." for k in sub):
            out |= from_fields_v1(sub, (*prefix, key))
        else:
            out.add((*prefix, key))
    return out


Ownership = dict[tuple[str, str], set[Path]]  # (manager, operation) -> owned leaves


def read_ownership(obj: dict[str, Any]) -> tuple[Ownership, dict[tuple[str, str], str]]:
    owners: Ownership = {}
    versions: dict[tuple[str, str], str] = {}
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        ident = (entry.get("manager", ""), entry.get("operation", "Update"))
        owners[ident] = from_fields_v1(entry.get("fieldsV1") or {})
        versions[ident] = entry.get("apiVersion", obj.get("apiVersion", ""))
    return owners, versions


def write_ownership(
    obj: dict[str, Any], owners: Ownership, versions: dict[tuple[str, str], str]
) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj.setdefault("metadata", {})["managedFields"] = [
        {
            "manager": manager,
            "operation": operation,
            "apiVersion": versions.get((manager, operation), obj.get("apiVersion", "")),
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(paths),
        }
        for (manager, operation), paths in owners.items()
        if paths
    ]


def record_update(
    old: dict[str, Any] | None, new: dict[str, Any], manager: str, keyed: bool
) -> None:
    """Give `manager` the leaves that differ between `old` and `new` (written into `new`)."""
    owners, versions = read_ownership(old or {})
    new_leaves = leaves(new, keyed)
    changed = {p for p in new_leaves if old is None or value_at(old, p) != value_at(new, p)}
    for ident in owners:
        owners[ident] = (owners[ident] - changed) & new_leaves
    ident = (manager, "Update")
    owners[ident] = (owners.get(ident, set()) | changed) & new_leaves
    versions[ident] = new.get("apiVersion", "")
    write_ownership(new, owners, versions)


def server_side_apply(
    live: dict[str, Any], config: dict[str, Any], manager: str, force: bool, keyed: bool
) -> dict[str, Any]:
    """The object after `manager` applies `config` to `live`; 409 on unforced conflicts."""
    owners, versions = read_ownership(live)
    applied = leaves(config, keyed)
    conflicts: list[tuple[str, Path]] = []
    for (other, operation), owned in owners.items():
        if other == manager and operation == "Apply":
            continue
        for path in sorted(applied & owned):
            if value_at(live, path) != value_at(config, path):
                conflicts.append((other, path))
    if conflicts and not force:
        lines = [
            f'conflict with "{who}": .{".".join(p.split(":", 1)[1] for p in path)}'
            for who, path in conflicts
        ]
        raise ApiError(
            409,
            "Conflict",
            f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: "
            + "\n".join(lines),
        )
    taken = {path for _, path in conflicts}
    merged = strategic_merge_patch(live, config, keyed=keyed)
    ident = (manager, "Apply")
    previous = owners.get(ident, set())
    kept_by_others = set().union(*(o for i, o in owners.items() if i != ident)) - taken
    for path in sorted(previous - applied - kept_by_others, key=len, reverse=True):
        remove_path(merged, path)
    for owner in owners:
        if owner != ident:
            owners[owner] -= taken
    owners[ident] = applied
    versions[ident] = config.get("apiVersion", live.get("apiVersion", ""))
    write_ownership(merged, owners, versions)
    return copy.deepcopy(merged)
