"""Custom resources checked against their CRD's structural `openAPIV3Schema`, as data.

`check(schema, obj)` walks the object and the schema together and returns the object with
unknown fields pruned, the paths of those unknown fields, and (field, message) causes for
values that break the schema. As on a real server: unknown fields are dropped (or, when the
client asked for `fieldValidation=Strict`, as kubectl does by default, refused with 400),
and a type, enum, required, min/max or pattern violation is a 422. `apiVersion`, `kind` and
`metadata` are the server's business and never pruned. Supported keywords: type, properties,
required, items, additionalProperties, enum, minimum, maximum, minLength, maxLength,
minItems, maxItems, pattern, nullable, x-kubernetes-preserve-unknown-fields and
x-kubernetes-int-or-string; anything else is accepted as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}
_TOP_LEVEL = ("apiVersion", "kind", "metadata")


@dataclass
class Result:
    obj: Any
    unknown: list[str] = field(default_factory=list)
    causes: list[tuple[str, str]] = field(default_factory=list)


def _type_ok(value: Any, kind: str, int_or_string: bool) -> bool:
    if int_or_string:
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    if not kind:
        return True
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, TYPES.get(kind, (object,)))


def _bounds(schema: dict[str, Any], value: Any, path: str, out: Result) -> None:
    def fail(text: str) -> None:
        out.causes.append((path, f"Invalid value: {value!r}: {path} in body {text}"))

    if "enum" in schema and value not in schema["enum"]:
        fail(f"should be one of {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            fail(f"should be greater than or equal to {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            fail(f"should be less than or equal to {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            fail(f"should be at least {schema['minLength']} chars long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            fail(f"may not be longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            fail(f"should match '{schema['pattern']}'")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            fail(f"should have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            fail(f"should have at most {schema['maxItems']} items")


def _walk(schema: dict[str, Any], value: Any, path: str, out: Result) -> Any:
    if value is None:
        if not schema.get("nullable"):
            out.causes.append((path, f'Invalid value: "null": {path} in body must not be null'))
        return value
    kind = schema.get("type", "")
    if not _type_ok(value, kind, bool(schema.get("x-kubernetes-int-or-string"))):
        out.causes.append(
            (path, f"Invalid value: {value!r}: {path} in body must be of type {kind}")
        )
        return value
    _bounds(schema, value, path, out)
    if isinstance(value, dict):
        return _walk_object(schema, value, path, out)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_walk(schema["items"], v, f"{path}[{i}]", out) for i, v in enumerate(value)]
    return value


def _walk_object(schema: dict[str, Any], value: dict[str, Any], path: str, out: Result) -> Any:
    props: dict[str, Any] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    for name in schema.get("required") or []:
        if name not in value:
            where = f"{path}.{name}" if path else name
            out.causes.append((where, "Required value"))
    result: dict[str, Any] = {}
    for key, sub in value.items():
        where = f"{path}.{key}" if path else key
        if not path and key in _TOP_LEVEL:
            result[key] = sub
        elif key in props:
            result[key] = _walk(props[key], sub, where, out)
        elif isinstance(extra, dict):
            result[key] = _walk(extra, sub, where, out)
        elif preserve or extra is True:
            result[key] = sub
        else:
            out.unknown.append(where)
    return result


def check(schema: dict[str, Any], obj: dict[str, Any]) -> Result:
    out = Result(obj)
    out.obj = _walk(schema, obj, "", out)
    return out


def crd_schema(crd: dict[str, Any], version: str) -> dict[str, Any] | None:
    """The openAPIV3Schema a CRD declares for `version`, if any."""
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("name") == version:
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            return schema if isinstance(schema, dict) else None
    return None
