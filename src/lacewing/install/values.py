"""The install values: one typed model, overlaid by `--values FILE` and `--set a.b=c`.

How it works:

- `Values` is a tree of frozen dataclasses. Python fields are snake_case; their keys in YAML,
  in `--set` and in the `lacewing-config` ConfigMap are the camelCase of the same name
  (`proxy.resources.cpu_request` is `proxy.resources.cpuRequest`), as in Linkerd's Helm values.
- Overlays work on the plain dict form: `values_to_dict`, then each `--values` file is merged
  (mappings recursively, everything else replaced), then each `--set` assignment, then
  `values_from_dict` rebuilds the model and type-checks every leaf. An unknown key, a wrong
  type or malformed YAML is one `ConfigError` naming the key path, with a hint listing the
  keys that do exist there.
- `--set` values are strings coerced to the field's type (`true`/`false`, integers); strings
  in a values file must be strings (an unquoted `1.10` would silently become `1.1`).
- Leaf checks (durations, resource quantities, namespace names) are data: `_CHECKS` maps a key
  path to a predicate and the expected form.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from lacewing import __version__
from lacewing.core import durations
from lacewing.core.policy import DEFAULT_POLICIES
from lacewing.errors import ConfigError

__all__ = [
    "DEFAULT_IMAGE",
    "IdentityValues",
    "ImageValues",
    "ProxyInitValues",
    "ProxyPorts",
    "ProxyValues",
    "ResourceValues",
    "Values",
    "WebhookValues",
    "apply_set",
    "build_values",
    "camel",
    "default_values",
    "merge",
    "parse_duration",
    "values_from_dict",
    "values_from_yaml",
    "values_to_dict",
]

DEFAULT_IMAGE = "ghcr.io/lacewing-mesh/lacewing"


def _default_tag() -> str:
    return __version__.split("+")[0]


@dataclass(frozen=True)
class ImageValues:
    name: str = DEFAULT_IMAGE
    tag: str = field(default_factory=_default_tag)
    pull_policy: str = "IfNotPresent"

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"


@dataclass(frozen=True)
class ResourceValues:
    """Kubernetes resource quantities; an empty string leaves the field out."""

    cpu_request: str = ""
    cpu_limit: str = ""
    memory_request: str = ""
    memory_limit: str = ""


@dataclass(frozen=True)
class ProxyPorts:
    inbound: int = 4143
    outbound: int = 4140
    admin: int = 4191
    tap: int = 4190


@dataclass(frozen=True)
class ProxyValues:
    uid: int = 2102
    log_level: str = "info"
    ports: ProxyPorts = field(default_factory=ProxyPorts)
    resources: ResourceValues = field(
        default_factory=lambda: ResourceValues(cpu_request="100m", memory_request="32Mi")
    )
    opaque_ports: str = "25,587,3306,4444,5432,6379,9300,11211"
    shutdown_grace_period: str = "30s"


@dataclass(frozen=True)
class ProxyInitValues:
    ignore_inbound_ports: str = ""
    ignore_outbound_ports: str = ""
    skip_subnets: str = ""
    resources: ResourceValues = field(
        default_factory=lambda: ResourceValues(
            cpu_request="10m", cpu_limit="100m", memory_request="10Mi", memory_limit="20Mi"
        )
    )


@dataclass(frozen=True)
class IdentityValues:
    trust_domain: str = "cluster.local"
    issuance_lifetime: str = "24h"
    clock_skew_allowance: str = "20s"
    external_issuer: bool = False
    trust_anchors_pem: str = ""  # filled by install; public certificates only, never keys


@dataclass(frozen=True)
class WebhookValues:
    failure_policy: str = "Ignore"
    timeout_seconds: int = 10


@dataclass(frozen=True)
class Values:
    namespace: str = "lacewing"
    image: ImageValues = field(default_factory=ImageValues)
    ha: bool = False
    controller_replicas: int = 1
    controller_log_level: str = "info"
    controller_resources: ResourceValues = field(
        default_factory=lambda: ResourceValues(cpu_request="50m", memory_request="64Mi")
    )
    cluster_domain: str = "cluster.local"
    cluster_networks: str = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16"
    default_inbound_policy: str = "all-unauthenticated"
    proxy: ProxyValues = field(default_factory=ProxyValues)
    proxy_init: ProxyInitValues = field(default_factory=ProxyInitValues)
    identity: IdentityValues = field(default_factory=IdentityValues)
    webhook: WebhookValues = field(default_factory=WebhookValues)

    @property
    def replicas(self) -> int:
        """Control plane replicas: `--ha` means at least 3."""
        return max(self.controller_replicas, 3) if self.ha else self.controller_replicas


def default_values() -> Values:
    return Values()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# -- model <-> dict ----------------------------------------------------------------------------


def values_to_dict(values: Any) -> dict[str, Any]:
    """The camelCase dict form of a Values tree (what YAML, `--set` and the ConfigMap use)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(values):
        value = getattr(values, f.name)
        out[camel(f.name)] = values_to_dict(value) if dataclasses.is_dataclass(value) else value
    return out


class _Raw(str):
    """A `--set` value: text, typed later by the field it lands in."""


def _from_text(value: _Raw, kind: Any) -> Any:
    if kind is bool and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind is int and re.fullmatch(r"-?\d+", value):
        return int(value)
    return str(value) if kind is str else value


def _coerce(value: Any, kind: Any, path: str) -> Any:
    if isinstance(value, _Raw):
        value = _from_text(value, kind)
        if isinstance(value, _Raw):
            value = str(value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"value {path} must be true or false, not {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"value {path} must be an integer, not {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(
            f"value {path} must be a string, not {value!r}",
            hint='quote it in YAML, e.g. tag: "1.10"',
        )
    raise AssertionError(f"unsupported field type {kind!r}")


def _build(cls: Any, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"value {path or '(top level)'} must be a mapping, not {data!r}")
    hints = typing.get_type_hints(cls)
    by_key = {camel(f.name): f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, raw in data.items():
        where = f"{path}.{key}" if path else str(key)
        f = by_key.get(str(key))
        if f is None:
            raise ConfigError(
                f"unknown value {where}",
                hint=f"known keys{' under ' + path if path else ''}: {', '.join(sorted(by_key))}",
            )
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            kwargs[f.name] = _build(kind, raw, where)
        else:
            kwargs[f.name] = _coerce(raw, kind, where)
    return cls(**kwargs)


def values_from_dict(data: dict[str, Any]) -> Values:
    """Strictly rebuild `Values` from its dict form; missing keys take their defaults."""
    values: Values = _build(Values, data, "")
    _check_leaves(values)
    return values


# -- leaf checks (data) ------------------------------------------------------------------------

# Whole hours, minutes and seconds, largest first: what Linkerd's values files hold.
_DURATION = durations.DurationSyntax(units=("h", "m", "s"), fractions=False, descending=True)
_QUANTITY = re.compile(r"^(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")
_LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def parse_duration(text: str) -> timedelta:
    """`24h`, `1h30m`, `20s`, `90s` -> timedelta; `ConfigError` otherwise."""
    try:
        return timedelta(seconds=durations.parse_duration(text, _DURATION))
    except durations.DurationError:
        raise ConfigError(
            f"{text!r} is not a duration", hint="write it like 24h, 90m or 20s"
        ) from None


def _is_duration(text: str) -> bool:
    try:
        parse_duration(text)
    except ConfigError:
        return False
    return True


def _all_quantities(resources: ResourceValues) -> list[tuple[str, str]]:
    return [(camel(f.name), getattr(resources, f.name)) for f in dataclasses.fields(resources)]


_CHECKS: list[tuple[str, typing.Callable[[str], bool], str]] = [
    ("namespace", lambda v: bool(_DNS_LABEL.match(v)), "a DNS label like lacewing"),
    ("identity.issuanceLifetime", _is_duration, "a duration like 24h"),
    ("identity.clockSkewAllowance", _is_duration, "a duration like 20s"),
    ("proxy.shutdownGracePeriod", _is_duration, "a duration like 30s"),
    ("proxy.logLevel", lambda v: v in _LOG_LEVELS, "trace, debug, info, warn or error"),
    ("controllerLogLevel", lambda v: v in _LOG_LEVELS, "trace, debug, info, warn or error"),
    ("webhook.failurePolicy", lambda v: v in ("Ignore", "Fail"), "Ignore or Fail"),
    ("image.pullPolicy", lambda v: v in ("Always", "IfNotPresent", "Never"), "a pull policy"),
    ("image.tag", lambda v: bool(re.match(r"^[\w][\w.-]{0,127}$", v)), "an image tag"),
    (
        "defaultInboundPolicy",
        lambda v: v in DEFAULT_POLICIES,
        f"{', '.join(DEFAULT_POLICIES[:-1])} or {DEFAULT_POLICIES[-1]}",
    ),
]


def _lookup(tree: dict[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        node = node[part]
    return node


def _check_leaves(values: Values) -> None:
    tree = values_to_dict(values)
    for path, ok, expected in _CHECKS:
        value = _lookup(tree, path)
        if not ok(value):
            raise ConfigError(f"value {path}={value!r} is invalid: expected {expected}")
    for prefix in ("proxy.resources", "proxyInit.resources", "controllerResources"):
        for key, quantity in _lookup(tree, prefix).items():
            if quantity and not _QUANTITY.match(quantity):
                raise ConfigError(
                    f"value {prefix}.{key}={quantity!r} is not a resource quantity",
                    hint="write CPU like 100m or 1, memory like 64Mi or 1Gi",
                )
    if values.controller_replicas < 1:
        raise ConfigError("value controllerReplicas must be at least 1")


# -- overlays ----------------------------------------------------------------------------------


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """A new dict: mappings merged recursively, anything else in `overlay` replaces."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_set(data: dict[str, Any], assignment: str) -> dict[str, Any]:
    """`data` with one `--set a.b=c` applied; `ConfigError` if it is not `key=value`."""
    key, sep, raw = assignment.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(
            f"--set {assignment!r} is not key=value",
            hint="write it like --set proxy.logLevel=debug",
        )
    value: Any = _Raw(raw)
    for part in reversed(parts):
        value = {part: value}
    return merge(data, value)


def values_from_yaml(text: str, source: str) -> dict[str, Any]:
    """The mapping in a values document (`source` names it in errors)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a mapping of values, not {type(data).__name__}")
    return data


def build_values(
    base: Values | dict[str, Any] | None = None,
    files: typing.Sequence[str] = (),
    sets: typing.Sequence[str] = (),
    overrides: dict[str, Any] | None = None,
) -> Values:
    """`base` (defaults, or stored values on upgrade) + files + `--set`s + flag `overrides`."""
    if base is None:
        data = values_to_dict(default_values())
    elif isinstance(base, Values):
        data = values_to_dict(base)
    else:
        data = merge(values_to_dict(default_values()), base)
    for name in files:
        try:
            text = Path(name).expanduser().read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read values file {name}: {exc.strerror or exc}") from None
        data = merge(data, values_from_yaml(text, f"values file {name}"))
    for assignment in sets:
        data = apply_set(data, assignment)
    if overrides:
        data = merge(data, overrides)
    return values_from_dict(data)
