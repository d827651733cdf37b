"""The pod's nat rules as data: a pure function of the proxy-init options.

`build_ruleset(options)` returns a `RuleSet`: two chains of our own and one jump into each from
a built-in chain. Nothing here runs a process or reads the host; `runner.py` compares the set
with what `iptables -S` shows and applies the difference.

    PREROUTING ─► PROXY_INIT_REDIRECT          OUTPUT ─► PROXY_INIT_OUTPUT
        RETURN  ignored inbound ports              RETURN  owner uid == proxy uid (2102)
                (always 4190 tap, 4191 admin)      RETURN  -o lo
        RETURN  ignored subnets (source)           RETURN  ignored outbound ports
        REDIRECT other TCP ─► 4143                 RETURN  ignored subnets (destination)
                                                   REDIRECT other TCP ─► 4140

Every rule carries `-m comment --comment proxy-init/<name>`. Each rule renders its arguments
in the order `iptables -S` prints them back, so "already installed" is a string comparison.
Port lists go into `-m multiport`, which takes at most 15 ports per rule (a range counts
twice), so long lists become several rules with the same comment.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from lacewing.errors import UsageError

__all__ = [
    "ALWAYS_IGNORED_INBOUND_PORTS",
    "DEFAULT_INBOUND_PROXY_PORT",
    "DEFAULT_OUTBOUND_PROXY_PORT",
    "DEFAULT_PROXY_UID",
    "INBOUND_CHAIN",
    "OUTBOUND_CHAIN",
    "Jump",
    "PortRange",
    "ProxyInitOptions",
    "Rule",
    "RuleSet",
    "build_ruleset",
    "parse_port_list",
    "parse_subnet_list",
]

TABLE = "nat"
INBOUND_CHAIN = "PROXY_INIT_REDIRECT"
OUTBOUND_CHAIN = "PROXY_INIT_OUTPUT"
COMMENT_PREFIX = "proxy-init/"

DEFAULT_INBOUND_PROXY_PORT = 4143
DEFAULT_OUTBOUND_PROXY_PORT = 4140
DEFAULT_PROXY_UID = 2102
TAP_PORT = 4190
ADMIN_PORT = 4191
ALWAYS_IGNORED_INBOUND_PORTS = (TAP_PORT, ADMIN_PORT)

MULTIPORT_LIMIT = 15  # iptables' multiport match takes at most 15 ports, a range counting 2


@dataclass(frozen=True, order=True)
class PortRange:
    """A port or an inclusive range of ports, as `--dports` takes it (`8000:8100`)."""

    first: int
    last: int

    @property
    def weight(self) -> int:
        return 1 if self.first == self.last else 2

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}:{self.last}"


@dataclass(frozen=True)
class ProxyInitOptions:
    """What `lacewing proxy-init` was asked for, already parsed and validated."""

    incoming_proxy_port: int = DEFAULT_INBOUND_PROXY_PORT
    outgoing_proxy_port: int = DEFAULT_OUTBOUND_PROXY_PORT
    proxy_uid: int = DEFAULT_PROXY_UID
    inbound_ports_to_ignore: tuple[PortRange, ...] = ()
    outbound_ports_to_ignore: tuple[PortRange, ...] = ()
    subnets_to_ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for flag, port in (
            ("--incoming-proxy-port", self.incoming_proxy_port),
            ("--outgoing-proxy-port", self.outgoing_proxy_port),
        ):
            _check_port(port, flag)
        if not 0 <= self.proxy_uid < 2**32:
            raise UsageError(
                f"--proxy-uid {self.proxy_uid} is not a user id",
                hint="give a number from 0 to 4294967295 (the proxy runs as 2102)",
            )


@dataclass(frozen=True)
class Rule:
    """One `-A CHAIN ...` line: match arguments, a comment, a target and its arguments."""

    chain: str
    match: tuple[str, ...]
    name: str
    target: str
    target_args: tuple[str, ...] = ()

    @property
    def comment(self) -> str:
        return COMMENT_PREFIX + self.name

    def spec(self) -> tuple[str, ...]:
        """The rule's arguments after the chain name, in `iptables -S` order."""
        return (
            *self.match,
            "-m",
            "comment",
            "--comment",
            self.comment,
            "-j",
            self.target,
            *self.target_args,
        )

    def render(self) -> str:
        """The line `iptables -S` prints for this rule."""
        parts = [f'"{p}"' if p == self.comment else p for p in self.spec()]
        return " ".join(("-A", self.chain, *parts))


@dataclass(frozen=True)
class Jump(Rule):
    """A rule in a built-in chain whose target is one of our chains."""


@dataclass(frozen=True)
class RuleSet:
    """Our chains, the rules in each (in order) and the jumps into them."""

    chains: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    jumps: tuple[Jump, ...] = ()

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rules in self.chains.values() for rule in rules)


def build_ruleset(options: ProxyInitOptions) -> RuleSet:
    """The nat rules that send a pod's TCP through its proxy, as Linkerd's proxy-init does."""
    inbound_ports = _merge_ports(
        [PortRange(p, p) for p in ALWAYS_IGNORED_INBOUND_PORTS], options.inbound_ports_to_ignore
    )
    inbound: list[Rule] = [
        Rule(INBOUND_CHAIN, _multiport(chunk), "ignore-inbound-ports", "RETURN")
        for chunk in _chunks(inbound_ports)
    ]
    inbound += [
        Rule(INBOUND_CHAIN, ("-s", subnet), "ignore-inbound-subnets", "RETURN")
        for subnet in options.subnets_to_ignore
    ]
    inbound.append(
        Rule(
            INBOUND_CHAIN,
            ("-p", "tcp"),
            "redirect-all-incoming-to-proxy-port",
            "REDIRECT",
            ("--to-ports", str(options.incoming_proxy_port)),
        )
    )

    outbound: list[Rule] = [
        Rule(
            OUTBOUND_CHAIN,
            ("-m", "owner", "--uid-owner", str(options.proxy_uid)),
            "ignore-proxy-user-id",
            "RETURN",
        ),
        Rule(OUTBOUND_CHAIN, ("-o", "lo"), "ignore-loopback", "RETURN"),
    ]
    outbound += [
        Rule(OUTBOUND_CHAIN, _multiport(chunk), "ignore-outbound-ports", "RETURN")
        for chunk in _chunks(_merge_ports([], options.outbound_ports_to_ignore))
    ]
    outbound += [
        Rule(OUTBOUND_CHAIN, ("-d", subnet), "ignore-outbound-subnets", "RETURN")
        for subnet in options.subnets_to_ignore
    ]
    outbound.append(
        Rule(
            OUTBOUND_CHAIN,
            ("-p", "tcp"),
            "redirect-all-outgoing-to-proxy-port",
            "REDIRECT",
            ("--to-ports", str(options.outgoing_proxy_port)),
        )
    )
    jumps = (
        Jump("PREROUTING", (), "install-proxy-init-prerouting", INBOUND_CHAIN),
        Jump("OUTPUT", (), "install-proxy-init-output", OUTBOUND_CHAIN),
    )
    return RuleSet({INBOUND_CHAIN: tuple(inbound), OUTBOUND_CHAIN: tuple(outbound)}, jumps)


def parse_port_list(text: str, flag: str) -> tuple[PortRange, ...]:
    """Parse `80,443,8000-8100` (spaces allowed, `:` also accepted in ranges)."""
    ports: list[PortRange] = []
    for raw in text.replace(" ", "").split(","):
        if not raw:
            continue
        first_text, sep, last_text = raw.replace(":", "-").partition("-")
        try:
            first = int(first_text)
            last = int(last_text) if sep else first
        except ValueError:
            raise UsageError(
                f"{flag}: {raw!r} is not a port or a port range",
                hint="use a comma-separated list such as 25,443,8000-8100",
            ) from None
        _check_port(first, flag)
        _check_port(last, flag)
        if last < first:
            raise UsageError(
                f"{flag}: range {raw!r} ends before it starts",
                hint="write ranges low-high, such as 8000-8100",
            )
        ports.append(PortRange(first, last))
    return tuple(ports)


def parse_subnet_list(text: str, flag: str = "--subnets-to-ignore") -> tuple[str, ...]:
    """Parse `10.0.0.0/8,192.168.1.7` into normalised IPv4 CIDRs."""
    subnets: list[str] = []
    for raw in text.replace(" ", "").split(","):
        if not raw:
            continue
        try:
            network = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            raise UsageError(
                f"{flag}: {raw!r} is not a subnet in CIDR form",
                hint="use a comma-separated list such as 10.0.0.0/8,192.168.0.0/16",
            ) from None
        if network.version != 4:
            raise UsageError(
                f"{flag}: {raw!r} is IPv6; proxy-init programs IPv4 iptables only",
                hint="give IPv4 subnets",
            )
        if str(network) not in subnets:
            subnets.append(str(network))
    return tuple(subnets)


def _check_port(port: int, flag: str) -> None:
    if not 1 <= port <= 65535:
        raise UsageError(f"{flag}: {port} is not a TCP port", hint="ports are 1 to 65535")


def _merge_ports(base: list[PortRange], extra: tuple[PortRange, ...]) -> list[PortRange]:
    merged: list[PortRange] = []
    for port in [*base, *extra]:
        if port not in merged:
            merged.append(port)
    return merged


def _chunks(ports: list[PortRange]) -> list[list[PortRange]]:
    chunks: list[list[PortRange]] = []
    current: list[PortRange] = []
    weight = 0
    for port in ports:
        if weight + port.weight > MULTIPORT_LIMIT:
            chunks.append(current)
            current, weight = [], 0
        current.append(port)
        weight += port.weight
    if current:
        chunks.append(current)
    return chunks


def _multiport(ports: list[PortRange]) -> tuple[str, ...]:
    return ("-p", "tcp", "-m", "multiport", "--dports", ",".join(str(p) for p in ports))
