"""The proxy's configuration: environment variables -> one frozen `Config`.

Every setting is a row of `SETTINGS` (variable, default, parser, help); `load(env)` walks the
table, parses each value and collects the first problem as a `ConfigError` naming the variable
(the CLI prints it on one line and exits 2). docs/proxy-config.md documents the same table;
`settings_table()` renders it so the two cannot drift apart.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lacewing.core.policy import (
    DEFAULT_CLUSTER_NETWORKS,
    DEFAULT_POLICIES,
    Network,
    parse_networks,
)
from lacewing.errors import ConfigError

__all__ = ["SETTINGS", "Addr", "Config", "Setting", "load", "parse_addr", "settings_table"]

PREFIX = "LACEWING_PROXY_"


@dataclass(frozen=True, slots=True)
class Addr:
    """A host (IP literal or name) and a TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_addr(text: str, *, allow_any_port: bool = False) -> Addr:
    """`host:port` or `[v6]:port` -> Addr; ValueError with a reason otherwise.

    `allow_any_port` accepts port 0 (listen on a port the kernel picks; tests use it)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{text!r} is not [ipv6]:port")
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{text!r} is not host:port")
    if allow_any_port and port == "0":
        return Addr(host, 0)
    return Addr(host, _port(port))


def _listen_addr(text: str) -> Addr:
    return parse_addr(text, allow_any_port=True)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{text!r} is not a port (1-65535)")
    return int(text)


def _ports(text: str) -> frozenset[int]:
    """`25,3306,8000-8010` -> the set of ports."""
    ports: set[int] = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        low, dash, high = item.partition("-")
        first, last = _port(low), _port(high) if dash else _port(low)
        if last < first:
            raise ValueError(f"range {item!r} is reversed")
        ports.update(range(first, last + 1))
    return frozenset(ports)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(text: str) -> float:
    """`10s`, `500ms`, `2m`, or a bare number of seconds -> seconds (float, > 0)."""
    text = text.strip()
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            value = float(text[: -len(unit)]) * _UNITS[unit]
            break
    else:
        if not text.replace(".", "", 1).isdigit():
            raise ValueError(f"{text!r} is not a duration like 10s, 500ms or 2m")
        value = float(text)
    if value <= 0:
        raise ValueError(f"{text!r} must be more than zero")
    return value


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) <= 0:
        raise ValueError(f"{text!r} is not a positive whole number")
    return int(text)


def _host(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError("empty host")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not all(c.isalnum() or c in "-." for c in text):
            raise ValueError(f"{text!r} is not an IP address or host name") from None
    return text


def _optional_addr(text: str) -> Addr | None:
    return parse_addr(text) if text.strip() else None


def _optional_listen_addr(text: str) -> Addr | None:
    return _listen_addr(text) if text.strip() else None


def _names(text: str) -> tuple[str, ...]:
    return tuple(filter(None, (part.strip() for part in text.split(","))))


def _default_policy(text: str) -> str:
    name = text.strip()
    if name not in DEFAULT_POLICIES:
        raise ValueError(f"{name!r} is not a default policy ({', '.join(DEFAULT_POLICIES)})")
    return name


def _networks(text: str) -> tuple[Network, ...]:
    return parse_networks(text, "networks")


def _optional_id(text: str) -> int | None:
    if not text.strip():
        return None
    if not text.strip().isdigit():
        raise ValueError(f"{text!r} is not a numeric id")
    return int(text)


_LEVELS = ("trace", "debug", "info", "warn", "warning", "error")


def _level(text: str) -> str:
    level = text.strip().lower()
    if level not in _LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(_LEVELS)}")
    return "warning" if level == "warn" else ("debug" if level == "trace" else level)


@dataclass(frozen=True)
class Setting:
    field: str
    default: str
    parse: Callable[[str], Any]
    help: str

    @property
    def variable(self) -> str:
        return PREFIX + self.field.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "inbound_listen_addr",
        "0.0.0.0:4143",
        _listen_addr,
        "Inbound listener (iptables redirects pod traffic here).",
    ),
    Setting(
        "outbound_listen_addr",
        "127.0.0.1:4140",
        _listen_addr,
        "Outbound listener (iptables redirects app traffic here).",
    ),
    Setting(
        "admin_listen_addr",
        "0.0.0.0:4191",
        _listen_addr,
        "Admin server: /metrics, /ready, /live, POST /shutdown.",
    ),
    Setting("log_level", "info", _level, "trace, debug, info, warn or error."),
    Setting(
        "opaque_ports",
        "",
        _ports,
        "Ports whose connections skip detection and are relayed as TCP (`25,3306,8000-8010`).",
    ),
    Setting(
        "detect_timeout",
        "10s",
        _duration,
        "Give up protocol detection after this long and relay as opaque TCP.",
    ),
    Setting(
        "inbound_forward_host",
        "127.0.0.1",
        _host,
        "Inbound connects to this host at the original destination port (the app in the pod).",
    ),
    Setting(
        "outbound_fixed_dst",
        "",
        _optional_addr,
        "host:port used INSTEAD of SO_ORIGINAL_DST for outbound "
        "(hosts without iptables, loopback benchmark); with a destination controller it is "
        "resolved (endpoints, routes) like an original destination.",
    ),
    Setting(
        "inbound_fixed_dst",
        "",
        _optional_addr,
        "host:port used INSTEAD of SO_ORIGINAL_DST for inbound "
        "(hosts without iptables, loopback benchmark).",
    ),
    Setting(
        "shutdown_grace_period",
        "30s",
        _duration,
        "On SIGTERM or POST /shutdown: how long in-flight work may finish.",
    ),
    Setting(
        "max_header_bytes",
        "65536",
        _positive_int,
        "Largest request head accepted; bigger requests get 431.",
    ),
    Setting(
        "max_connections",
        "10000",
        _positive_int,
        "Accepted connections per listener beyond which new ones are closed.",
    ),
    Setting(
        "idle_timeout",
        "300s",
        _duration,
        "Close client and pooled upstream connections idle this long.",
    ),
    Setting(
        "header_read_timeout",
        "10s",
        _duration,
        "A request head that takes longer than this to arrive gets 408 (slow clients).",
    ),
    Setting(
        "connect_timeout",
        "1s",
        _duration,
        "Connecting to an endpoint longer than this answers 504 (HTTP) or closes (TCP).",
    ),
    Setting(
        "discovery_wait",
        "1s",
        _duration,
        "A new outbound connection waits this long at most for destination's first answer "
        "about where it goes (then goes to the original destination).",
    ),
    Setting(
        "max_idle_per_endpoint",
        "256",
        _positive_int,
        "Idle keep-alive connections kept per endpoint (keep >= concurrency).",
    ),
    Setting(
        "run_as_uid",
        "",
        _optional_id,
        "When started as root: drop to this uid after binding "
        "(the iptables-exempt proxy uid, 2102).",
    ),
    Setting(
        "run_as_gid", "", _optional_id, "Group id to drop to with RUN_AS_UID (defaults to the uid)."
    ),
    Setting(
        "destination_addr",
        "",
        _optional_addr,
        "The destination controller (host:port). When set, outbound resolves each original "
        "destination through it and balances requests over its endpoints; unset: pass through.",
    ),
    Setting(
        "policy_addr",
        "",
        _optional_addr,
        "The policy controller (host:port). When set, inbound enforces each port's "
        "authorization policy from it (POD_NAME and POD_NAMESPACE say whose); unset: "
        "inbound admits every client.",
    ),
    Setting(
        "inbound_ports",
        "",
        _ports,
        "The pod's container ports (the injector lists them): their policy streams start with "
        "the proxy, so the first connections find their policy already there.",
    ),
    Setting(
        "policy_wait",
        "1s",
        _duration,
        "The first inbound connection to a port waits this long at most for the policy "
        "controller's first answer about that port (then the default policy applies).",
    ),
    Setting(
        "default_inbound_policy",
        "all-unauthenticated",
        _default_policy,
        "The policy a port has until the policy controller first answers (`deny` fails closed).",
    ),
    Setting(
        "cluster_networks",
        DEFAULT_CLUSTER_NETWORKS,
        _networks,
        "The networks the `cluster-*` default policies admit.",
    ),
    Setting("pod_name", "", str, "This pod's name (for the policy controller)."),
    Setting("pod_namespace", "", str, "This pod's namespace (for the policy controller)."),
    Setting(
        "tap_listen_addr",
        "",
        _optional_listen_addr,
        "Tap server (meshed proxies, mutual TLS only; the sidecar sets 0.0.0.0:4190); unset: none.",
    ),
    Setting(
        "tap_allowed_identities",
        "",
        _names,
        "Client identities allowed to tap (comma-separated); empty: the viz tap component's, "
        "tap.lacewing-viz.serviceaccount.identity.lacewing.<trust domain>.",
    ),
)


@dataclass(frozen=True)
class Config:
    inbound_listen_addr: Addr
    outbound_listen_addr: Addr
    admin_listen_addr: Addr
    log_level: str
    opaque_ports: frozenset[int]
    detect_timeout: float
    inbound_forward_host: str
    outbound_fixed_dst: Addr | None
    inbound_fixed_dst: Addr | None
    shutdown_grace_period: float
    max_header_bytes: int
    max_connections: int
    idle_timeout: float
    header_read_timeout: float
    connect_timeout: float
    discovery_wait: float
    max_idle_per_endpoint: int
    run_as_uid: int | None
    run_as_gid: int | None
    destination_addr: Addr | None = None
    policy_addr: Addr | None = None
    inbound_ports: frozenset[int] = frozenset()
    policy_wait: float = 1.0
    default_inbound_policy: str = "all-unauthenticated"
    cluster_networks: tuple[Network, ...] = ()
    pod_name: str = ""
    pod_namespace: str = ""
    tap_listen_addr: Addr | None = None
    tap_allowed_identities: tuple[str, ...] = ()


def load(env: Mapping[str, str]) -> Config:
    """Parse the `LACEWING_PROXY_*` variables of `env`; unset ones take their default."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = env.get(setting.variable, setting.default)
        try:
            values[setting.field] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(
                f"{setting.variable}: {exc}", hint=f"{setting.variable}: {setting.help}"
            ) from None
    known = {s.variable for s in SETTINGS}
    unknown = sorted(k for k in env if k.startswith(PREFIX) and k not in known)
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: unknown setting",
            hint="see docs/proxy-config.md for the variables lacewing proxy reads",
        )
    if values["policy_addr"] is not None and not (values["pod_name"] and values["pod_namespace"]):
        raise ConfigError(
            f"{PREFIX}POLICY_ADDR needs {PREFIX}POD_NAME and {PREFIX}POD_NAMESPACE",
            hint="the policy controller answers per pod: set both (the downward API gives them)",
        )
    return Config(**values)


def settings_table() -> str:
    """The Markdown table of settings, as docs/proxy-config.md shows it."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(unset)"
        lines.append(f"| `{s.variable}` | {default} | {s.help} |")
    return "\n".join(lines) + "\n"
