"""The three client-side patch formats: JSON merge, JSON patch and strategic merge.

- JSON merge patch (RFC 7386): maps merge recursively, `null` deletes a key, any other value
  (lists included) replaces.
- JSON patch (RFC 6902): a list of add/remove/replace/move/copy/test operations on JSON
  pointers; a failed `test` or a missing path is a 422, as on a real server.
- Strategic merge patch: a JSON merge patch that knows, for built-in kinds, which lists are
  keyed (`containers` by `name`, container `ports` by `containerPort`, Service `ports` by
  `port`, webhook configurations' `webhooks` by `name`...; `MERGE_KEYS`) and merges their
  items by key instead of replacing the list.
  Lists of scalars such as `finalizers` merge as sets. The directives kubectl sends are
  honoured: `$patch: delete|replace|merge`, `$retainKeys`, `$deleteFromPrimitiveList/<f>` and
  `$setElementOrder/<f>` (which orders the merged list).
"""

from __future__ import annotations

import copy
from typing import Any

from tests.support.kubeapi.errors import ApiError

# (parent field, list field) or (list field,) -> the key list items are merged by.
MERGE_KEYS: dict[tuple[str, ...], str] = {
    ("containers", "ports"): "containerPort",
    ("initContainers", "ports"): "containerPort",
    ("ephemeralContainers", "ports"): "containerPort",
    ("spec", "ports"): "port",
    ("containers",): "name",
    ("initContainers",): "name",
    ("ephemeralContainers",): "name",
    ("env",): "name",
    ("volumes",): "name",
    ("volumeMounts",): "mountPath",
    ("volumeDevices",): "devicePath",
    ("imagePullSecrets",): "name",
    ("conditions",): "type",
    ("ownerReferences",): "uid",
    ("hostAliases",): "ip",
    ("topologySpreadConstraints",): "topologyKey",
    ("resourceClaims",): "name",
    ("webhooks",): "name",  # Mutating/ValidatingWebhookConfiguration
}
# Lists of scalars that merge as sets rather than being replaced.
SET_LISTS = frozenset({"finalizers"})


def merge_key(path: tuple[str, ...]) -> str | None:
    """The merge key of the list at `path` (field names only), if it is a keyed list."""
    if len(path) >= 2 and path[-2:] in MERGE_KEYS:
        return MERGE_KEYS[path[-2:]]
    return MERGE_KEYS.get(path[-1:])


def json_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------------------- JSON patch (RFC 6902)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f'invalid JSON pointer "{path}"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for part in parts:
        try:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiError(
                422, "Invalid", f"the server rejected our request: missing path {path}"
            ) from None
    return cur


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else _index(last, len(parent) + 1, path)
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise ApiError(422, "Invalid", f"cannot add at {path}: parent is not a container")
    return doc


def _index(text: str, bound: int, path: str) -> int:
    if not text.isdigit() or int(text) >= bound:
        raise ApiError(422, "Invalid", f"invalid array index in {path}")
    return int(text)


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    parts = _pointer(path)
    if not parts:
        raise ApiError(422, "Invalid", "cannot remove the whole document")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, list):
        return doc, parent.pop(_index(last, len(parent), path))
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    raise ApiError(422, "Invalid", f"the server rejected our request: missing path {path}")


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise ApiError.bad_request("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError.bad_request(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc, _ = _remove(doc, path) if _pointer(path) else (doc, None)
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            src = op.get("from", "")
            value = copy.deepcopy(_walk(doc, _pointer(src), src))
            if kind == "move":
                doc, _ = _remove(doc, src)
            doc = _add(doc, path, value)
        elif kind == "test":
            if _walk(doc, _pointer(path), path) != op.get("value"):
                raise ApiError(422, "Invalid", f"testing value {path} failed")
        else:
            raise ApiError.bad_request(f'unknown JSON patch operation "{kind}"')
    return doc


# ---------------------------------------------------------------- strategic merge patch


def strategic_merge_patch(
    target: Any, patch: Any, path: tuple[str, ...] = (), keyed: bool = True
) -> Any:
    """Apply a strategic merge patch to `target` (not modified); returns the result.

    `keyed=False` treats every list as atomic (server-side apply on custom resources).
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, (*path, key), keyed)
        else:
            result[key] = strategic_merge_patch(result.get(key), value, (*path, key), keyed)
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _order(result[field], order, merge_key((*path, field)))
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(live: Any, patch: list[Any], path: tuple[str, ...], keyed: bool) -> list[Any]:
    live_list = copy.deepcopy(live) if isinstance(live, list) else []
    key = merge_key(path) if keyed else None
    if key is None:
        if path[-1] in SET_LISTS:
            return live_list + [v for v in patch if v not in live_list]
        if any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch):
            return [v for v in patch if not isinstance(v, dict) or "$patch" not in v]
        return copy.deepcopy(patch)
    for item in patch:
        if not isinstance(item, dict):
            raise ApiError.bad_request(f"list {'.'.join(path)} items must be objects")
        if item.get("$patch") == "replace":
            return [copy.deepcopy(i) for i in patch if i.get("$patch") is None]
        index = next((i for i, old in enumerate(live_list) if old.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                live_list.pop(index)
        elif index is None:
            live_list.append(strategic_merge_patch({}, item, path, keyed))
        else:
            live_list[index] = strategic_merge_patch(live_list[index], item, path, keyed)
    return live_list


def _order(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [ident(o) for o in order]
    ranked = sorted(
        enumerate(items),
        key=lambda pair: (
            wanted.index(ident(pair[1])) if ident(pair[1]) in wanted else len(wanted),
            pair[0],
        ),
    )
    return [item for _, item in ranked]
