"""A container's environment from its spec, as the kubelet computes it (pure).

`container_env(pod, container, lookup)` walks `envFrom` then `env` in order. A value may be
a literal (with `$(NAME)` references to earlier variables expanded, `$$` for a literal `$`,
unknown references left as written, as Kubernetes does) or `valueFrom`:
- `fieldRef`: metadata.name / namespace / uid, metadata.labels['k'] / annotations['k'],
  spec.nodeName, spec.serviceAccountName, status.podIP, status.hostIP, status.podIPs;
- `secretKeyRef` / `configMapKeyRef`: a key of an object in the pod's namespace, read
  through `lookup(kind, name)` (None when absent); a missing object or key is an error
  (`CreateContainerConfigError`) unless the reference is `optional`;
- `resourceFieldRef`: the limit or request, as a plain string.
`expand(args, env)` applies the same `$(NAME)` rule to command and args. The kubelet adds
HOSTNAME, HOME (/, as containerd sets it for a user without a passwd entry) and the
`kubernetes` Service's KUBERNETES_SERVICE_HOST/PORT (service links for other Services are
not emulated).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["EnvError", "Lookup", "container_env", "expand", "field_value"]

Lookup = Callable[[str, str], dict[str, Any] | None]
_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class EnvError(Exception):
    """The spec refers to something that is not there (CreateContainerConfigError)."""


def expand(value: str, env: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _REF.sub(sub, value)


def field_value(pod: Mapping[str, Any], path: str) -> str:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(p["ip"] for p in status.get("podIPs") or []),
    }
    if path in simple:
        return str(simple[path] or "")
    m = _SUBSCRIPT.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = (meta.get(path.split(".")[1]) or {}).items()
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items))
    raise EnvError(f"unsupported fieldPath {path!r}")


def _key_of(
    kind: str, ref: Mapping[str, Any], lookup: Lookup, *, whole: bool = False
) -> dict[str, str] | str | None:
    obj = lookup(kind, ref.get("name", ""))
    optional = bool(ref.get("optional"))
    if obj is None:
        if optional:
            return None
        raise EnvError(f'{kind.lower()} "{ref.get("name")}" not found')
    data: dict[str, str] = dict(obj.get("data") or {})
    if kind == "Secret":
        data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        data.update(obj.get("stringData") or {})
    else:
        data.update(
            {k: base64.b64decode(v).decode() for k, v in (obj.get("binaryData") or {}).items()}
        )
    if whole:
        return data
    key = ref.get("key", "")
    if key not in data:
        if optional:
            return None
        raise EnvError(
            f"couldn't find key {key} in {kind} {obj['metadata']['namespace']}/{ref.get('name')}"
        )
    return data[key]


def _value_from(
    pod: Mapping[str, Any], container: Mapping[str, Any], source: Mapping[str, Any], lookup: Lookup
) -> str | None:
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"].get("fieldPath", ""))
    if "secretKeyRef" in source:
        got = _key_of("Secret", source["secretKeyRef"], lookup)
        return None if got is None else str(got)
    if "configMapKeyRef" in source:
        got = _key_of("ConfigMap", source["configMapKeyRef"], lookup)
        return None if got is None else str(got)
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"]
        section, _, name = str(ref.get("resource", "")).partition(".")
        resources = container.get("resources") or {}
        return str((resources.get(section) or {}).get(name, "0"))
    raise EnvError(f"unsupported valueFrom {sorted(source)}")


def container_env(
    pod: Mapping[str, Any], container: Mapping[str, Any], lookup: Lookup
) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if field in source:
                data = _key_of(kind, source[field], lookup, whole=True)
                for key, value in (data or {}).items() if isinstance(data, dict) else ():
                    env[prefix + key] = value
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" in var:
            value = _value_from(pod, container, var["valueFrom"], lookup)
            if value is not None:
                env[name] = value
        else:
            env[name] = expand(str(var.get("value", "")), env)
    return env


def expand_all(values: Sequence[str] | None, env: Mapping[str, str]) -> list[str] | None:
    return None if values is None else [expand(str(v), env) for v in values]
