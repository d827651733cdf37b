"""What a pod asks for: the injection annotations, and the install values they override.

How it works: every configuration annotation is a row of `OVERRIDES` (annotation, the install
value it replaces as a camelCase path, and a check of its text). `pod_values` overlays the
namespace's annotations, then the pod's (a pod's own annotation wins, as in Linkerd; a workload's
template annotations arrive on its pods), onto the install values with
`lacewing.install.values.build_values`, so an override goes through the same type and range
checks as `lacewing install --set`. A bad value is one `ConfigError` naming the annotation.

Nothing here builds containers: the result is a `Values` handed to `lacewing.install.sidecar`,
which is why an annotated pod's sidecar differs from the installed default only where values do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lacewing.errors import ConfigError
from lacewing.install.values import Values, build_values, values_from_yaml

__all__ = [
    "CONFIG_PREFIX",
    "INJECT_ANNOTATION",
    "NATIVE_SIDECAR_ANNOTATION",
    "OVERRIDES",
    "SKIPPED_ANNOTATION",
    "Override",
    "config_annotations",
    "inject_setting",
    "native_sidecar",
    "pod_values",
    "values_from_config",
]

INJECT_ANNOTATION = "lacewing.io/inject"
SKIPPED_ANNOTATION = "lacewing.io/inject-skipped"
CONFIG_PREFIX = "config.lacewing.io/"
NATIVE_SIDECAR_ANNOTATION = "config.alpha.lacewing.io/proxy-enable-native-sidecar"
INJECT_VALUES = ("enabled", "disabled")

_PORT_ITEM = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


def _port_list(text: str) -> bool:
    """`25,3306,8000-8010`: ports 1-65535 and ascending ranges."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        match = _PORT_ITEM.match(item)
        if not match:
            return False
        low = int(match[1])
        high = int(match[2]) if match[2] else low
        if not 0 < low <= high < 65536:
            return False
    return bool(items)


def _anything(text: str) -> bool:
    return True  # the install values' own checks judge it


@dataclass(frozen=True)
class Override:
    """A `config.lacewing.io/<name>` annotation and the install value it replaces."""

    name: str
    value_path: str  # camelCase path in the install values
    valid: Callable[[str], bool]
    expected: str

    @property
    def annotation(self) -> str:
        return CONFIG_PREFIX + self.name


_PORTS = "ports like 25,8000-8010"
_CPU = "a CPU quantity like 100m or 1"
_MEM = "a memory quantity like 64Mi"
_POLICIES = "all-unauthenticated, all-authenticated, cluster-unauthenticated or deny"

OVERRIDES: tuple[Override, ...] = (
    Override("skip-inbound-ports", "proxyInit.ignoreInboundPorts", _port_list, _PORTS),
    Override("skip-outbound-ports", "proxyInit.ignoreOutboundPorts", _port_list, _PORTS),
    Override("opaque-ports", "proxy.opaquePorts", _port_list, _PORTS),
    Override("proxy-cpu-request", "proxy.resources.cpuRequest", _anything, _CPU),
    Override("proxy-cpu-limit", "proxy.resources.cpuLimit", _anything, _CPU),
    Override("proxy-memory-request", "proxy.resources.memoryRequest", _anything, _MEM),
    Override("proxy-memory-limit", "proxy.resources.memoryLimit", _anything, _MEM),
    Override("proxy-log-level", "proxy.logLevel", _anything, "trace, debug, info, warn or error"),
    Override("default-inbound-policy", "defaultInboundPolicy", _anything, _POLICIES),
)

_BY_ANNOTATION = {o.annotation: o for o in OVERRIDES}


def _annotations(meta: Mapping[str, Any] | None) -> dict[str, str]:
    raw = (meta or {}).get("annotations") or {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def inject_setting(meta: Mapping[str, Any] | None) -> str | None:
    """`enabled`, `disabled` or None (absent) from `lacewing.io/inject` in `meta`.

    Anything else is a `ConfigError`: a typo must not silently leave a workload unmeshed.
    """
    value = _annotations(meta).get(INJECT_ANNOTATION)
    if value is None:
        return None
    if value not in INJECT_VALUES:
        raise ConfigError(
            f"annotation {INJECT_ANNOTATION}={value!r} is invalid",
            hint="use lacewing.io/inject: enabled or disabled",
        )
    return value


def config_annotations(
    namespace_meta: Mapping[str, Any] | None, pod_meta: Mapping[str, Any] | None
) -> dict[str, str]:
    """The configuration annotations in effect for a pod: the namespace's, then the pod's."""
    merged: dict[str, str] = {}
    for meta in (namespace_meta, pod_meta):
        for key, value in _annotations(meta).items():
            if key in _BY_ANNOTATION or key == NATIVE_SIDECAR_ANNOTATION:
                merged[key] = value
    return merged


def native_sidecar(effective: Mapping[str, str], default: bool) -> bool:
    """Whether the proxy runs as a native sidecar (an init container restarting Always)."""
    raw = effective.get(NATIVE_SIDECAR_ANNOTATION)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise ConfigError(
            f"annotation {NATIVE_SIDECAR_ANNOTATION}={raw!r} is invalid", hint="use true or false"
        )
    return raw.lower() == "true"


def _nested(path: str, value: str) -> dict[str, Any]:
    tree: Any = value
    for part in reversed(path.split(".")):
        tree = {part: tree}
    result: dict[str, Any] = tree
    return result


def _merge_into(target: dict[str, Any], overlay: dict[str, Any]) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = value


def pod_values(base: Values, effective: Mapping[str, str]) -> Values:
    """`base` with every configuration annotation in `effective` applied."""
    overrides: dict[str, Any] = {}
    for key, value in effective.items():
        override = _BY_ANNOTATION.get(key)
        if override is None:
            continue
        if not override.valid(value):
            raise ConfigError(
                f"annotation {key}={value!r} is invalid: expected {override.expected}"
            )
        _merge_into(overrides, _nested(override.value_path, value.strip()))
    if not overrides:
        return base
    try:
        return build_values(base, overrides=overrides)
    except ConfigError as exc:
        names = ", ".join(f"{k}={v!r}" for k, v in sorted(effective.items()) if k in _BY_ANNOTATION)
        raise ConfigError(
            f"invalid proxy configuration annotations ({names}): {exc.message}", hint=exc.hint
        ) from None


def values_from_config(config_map: Mapping[str, Any] | None, source: str) -> Values:
    """The install values recorded in the `lacewing-config` ConfigMap (`data.values`)."""
    data = (config_map or {}).get("data") or {}
    text = data.get("values") if isinstance(data, Mapping) else None
    if not text:
        raise ConfigError(
            f"{source} records no install values",
            hint="re-apply the control plane: lacewing upgrade | kubectl apply -f -",
        )
    return build_values(values_from_yaml(str(text), source))
