"""Inbound authorization policy: what a proxy enforces on one port, and the decision it makes.

The policy controller parses the cluster's resources (`lacewing.core.policy_resources`) and
compiles them (`lacewing.core.policy_index`) into one `PortPolicy` per (pod, port); the proxy
holds it and calls `evaluate` per connection (and per HTTP request, with the method and
path). This module is the compiled form, the evaluation, the default policies and the wire
form. Pure: no I/O, no asyncio.

A `PortPolicy` names the server that governs the port (`server_kind` "server" and the
Server's name, or "default" and the default policy's name), the protocol the Server declares,
and a list of `Authorization`s. An authorization admits a client when **both** hold:

- its address is in one of `networks` (a CIDR minus its `except` CIDRs), and
- it is `unauthenticated`-ok, or it presented a mesh identity matched by one of `identities`
  (`IdentityMatch`: `any` meshed client, an `exact` name, or a `suffix` from `*.ns.svc...`).

`evaluate` walks the authorizations in order and returns the first that admits the client.
Per HTTP request (`path` given) on a port whose Server has HTTPRoutes (`PortPolicy.routes`,
`PortRoute`: `core.inbound_routes`), the request is first matched against the routes
(`core.route_table.RouteTable`, Gateway API precedence): no match -> `Decision.not_found`
(the proxy answers 404, counts `inbound_http_route_not_found_total`); a match -> that
route's own authorizations, then the port's. Decisions on HTTP requests carry the route
(`route_kind`, `route_name`): the route's (`HTTPRoute`, its name), or, on a port without
routes, Linkerd's built-in `default` route (`route_kind="default"`, `route_name="default"`,
or `probe` for a probe). When no authorization admits the client:
- an HTTP request for one of the pod's kubelet probe paths, with `GET`, on a port without
  routes, is admitted by the built-in `probe` authorization (as Linkerd does: on
  default-policy ports and on Servers; a Server with HTTPRoutes gets no probe paths, its
  routes say what is served);
- otherwise, with `audit` set, the client is admitted and `Decision.audit_denied` says it would
  have been denied (`authz_kind="default"`, `authz_name="audit"`, as Linkerd labels it);
- otherwise denied (`authz_kind=""`, `authz_name=""`).

Default policies (Linkerd's names) compile to authorizations of kind "default":

    all-unauthenticated      any network, identity optional
    all-authenticated        any network, a mesh identity required
    cluster-unauthenticated  the cluster networks, identity optional
    cluster-authenticated    the cluster networks, a mesh identity required
    deny                     no authorization
    audit                    no authorization, audit on: everything admitted, flagged

`resolve_default_policy` picks the one that applies to a pod: the pod annotation
`config.lacewing.io/default-inbound-policy`, else the workload's, else the namespace's, else
the install default. An annotation with an unknown value is skipped (and reported), so a typo
never opens a pod wider than the next level up says.

Wire form (`policy_to_dict` / `policy_from_dict`, one JSON object; the stream sends it whole):

    {"port": 8080, "server": {"kind": "server", "name": "web-http"}, "protocol": "HTTP/1",
     "audit": false, "probePaths": ["/ready"],
     "authorizations": [{"kind": "authorizationpolicy", "name": "web-authz",
                         "networks": [{"cidr": "10.0.0.0/8", "except": ["10.0.9.0/24"]}],
                         "unauthenticated": false,
                         "identities": [{"exact": "web.shop.serviceaccount.identity..."},
                                        {"suffix": ".ops.serviceaccount.identity..."},
                                        {"any": true}]}],
     "routes": [{"name": "web-get", "group": "policy.lacewing.io", "created": "...",
                 "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                 "authorizations": [...as above...]}]}

("routes" may be absent: a port without routes, as older controllers sent it.)
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from lacewing.core.inbound_routes import match_from_dict, match_to_dict
from lacewing.core.route_table import RouteTable
from lacewing.core.routes import Match, Route, RouteError, Rule

__all__ = [
    "ALL_NETWORKS",
    "DEFAULT_CLUSTER_NETWORKS",
    "DEFAULT_POLICIES",
    "DEFAULT_POLICY_ANNOTATION",
    "PROTOCOLS",
    "Authorization",
    "Decision",
    "IdentityMatch",
    "Network",
    "PolicyError",
    "PortPolicy",
    "PortRoute",
    "ResolvedDefault",
    "default_authorizations",
    "default_port_policy",
    "evaluate",
    "parse_networks",
    "policy_from_dict",
    "policy_to_dict",
    "resolve_default_policy",
]

DEFAULT_POLICY_ANNOTATION: Final = "config.lacewing.io/default-inbound-policy"
DEFAULT_POLICIES: Final = (
    "all-unauthenticated",
    "all-authenticated",
    "cluster-unauthenticated",
    "cluster-authenticated",
    "deny",
    "audit",
)
PROTOCOLS: Final = ("unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS")
DEFAULT_CLUSTER_NETWORKS: Final = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PolicyError(ValueError):
    """A policy resource, annotation or wire document is invalid; the message says where."""


def _net(text: object, where: str) -> IPNetwork:
    if not isinstance(text, str):
        raise PolicyError(f"{where}: expected a CIDR string like 10.0.0.0/8")
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise PolicyError(f"{where}: {text!r} is not an IP network in CIDR notation") from None


@dataclass(frozen=True)
class Network:
    """A client network: `cidr` minus every network in `excepted`."""

    cidr: IPNetwork
    excepted: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(
        cls, cidr: object, excepted: Iterable[object] = (), where: str = "network"
    ) -> Network:
        net = _net(cidr, f"{where}.cidr")
        out = []
        for i, text in enumerate(excepted):
            ex = _net(text, f"{where}.except[{i}]")
            if ex.version != net.version or not ex.subnet_of(net):  # type: ignore[arg-type]
                raise PolicyError(f"{where}.except[{i}]: {ex} is not inside {net}")
            out.append(ex)
        return cls(net, tuple(out))

    def contains(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if ip.version != self.cidr.version or ip not in self.cidr:
            return False
        return not any(ip in ex for ex in self.excepted)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cidr": str(self.cidr)}
        if self.excepted:
            out["except"] = [str(e) for e in self.excepted]
        return out


ALL_NETWORKS: Final = (
    Network(ipaddress.ip_network("0.0.0.0/0")),
    Network(ipaddress.ip_network("::/0")),
)


def parse_networks(text: str, where: str = "--cluster-networks") -> tuple[Network, ...]:
    """`"10.0.0.0/8,fd00::/8"` -> Networks; PolicyError naming the bad part."""
    parts = [p for p in (s.strip() for s in text.split(",")) if p]
    if not parts:
        raise PolicyError(f"{where}: expected a comma-separated list of CIDRs")
    return tuple(Network.parse(p, where=f"{where}[{i}]") for i, p in enumerate(parts))


@dataclass(frozen=True)
class IdentityMatch:
    """`any` meshed identity, an `exact` one, or those ending in `suffix` (`*.ns...` form)."""

    exact: str | None = None
    suffix: str | None = None

    @classmethod
    def parse(cls, text: str, where: str = "identity") -> IdentityMatch:
        text = text.strip()
        if text == "*":
            return cls()
        if text.startswith("*."):
            if len(text) < 3 or "*" in text[1:]:
                raise PolicyError(f"{where}: {text!r}: `*` may only be the first label")
            return cls(suffix=text[1:])
        if not text or "*" in text:
            raise PolicyError(f"{where}: {text!r}: use an identity, `*`, or `*.DOMAIN`")
        return cls(exact=text)

    def matches(self, identity: str) -> bool:
        if self.exact is not None:
            return identity == self.exact
        if self.suffix is not None:
            return identity.endswith(self.suffix)
        return True

    def to_dict(self) -> dict[str, Any]:
        if self.exact is not None:
            return {"exact": self.exact}
        if self.suffix is not None:
            return {"suffix": self.suffix}
        return {"any": True}


@dataclass(frozen=True)
class Authorization:
    """One way in: from these networks, with (or without) one of these identities."""

    kind: str  # "authorizationpolicy", "default"
    name: str
    networks: tuple[Network, ...] = ALL_NETWORKS
    unauthenticated: bool = False
    identities: tuple[IdentityMatch, ...] = ()

    def admits(
        self, identity: str | None, ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> bool:
        if not any(n.contains(ip) for n in self.networks):
            return False
        if self.unauthenticated:
            return True
        return identity is not None and any(m.matches(identity) for m in self.identities)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "networks": [n.to_dict() for n in self.networks],
            "unauthenticated": self.unauthenticated,
            "identities": [m.to_dict() for m in self.identities],
        }


@dataclass(frozen=True)
class PortRoute:
    """One HTTPRoute of the port's Server: which requests it matches, who may send them."""

    name: str
    group: str
    matches: tuple[Match, ...]
    authorizations: tuple[Authorization, ...] = ()
    created: str = ""
    kind: str = "HTTPRoute"  # the route_kind label

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "created": self.created,
            "matches": [match_to_dict(m) for m in self.matches],
            "authorizations": [a.to_dict() for a in self.authorizations],
        }


_NO_HEADER: Final[Callable[[str], str | None]] = lambda _name: None  # noqa: E731


@dataclass(frozen=True)
class PortPolicy:
    """What a proxy enforces on one inbound port of one pod (see the module docstring)."""

    port: int
    server_kind: str  # "server" or "default"
    server_name: str
    protocol: str = "unknown"
    authorizations: tuple[Authorization, ...] = ()
    audit: bool = False
    probe_paths: tuple[str, ...] = ()
    routes: tuple[PortRoute, ...] = ()
    # built once per policy: the routes' table, and its routes back to ours
    _table: RouteTable | None = field(default=None, init=False, repr=False, compare=False)
    _by_route: dict[tuple[str, str], PortRoute] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.routes:
            return
        table = RouteTable(
            Route(r.name, "", r.group, (), (Rule(r.matches),), r.created) for r in self.routes
        )
        object.__setattr__(self, "_table", table)
        self._by_route.update(((r.group, r.name), r) for r in self.routes)

    def route_for(
        self, method: str, path: str, header: Callable[[str], str | None] = _NO_HEADER
    ) -> PortRoute | None:
        """The route a request takes (None: no route matches it); only with `routes`."""
        assert self._table is not None
        path, _, query = path.partition("?")
        found = self._table.match(method, path or "/", header, query)
        return None if found is None else self._by_route[(found.route.group, found.route.name)]


@dataclass(frozen=True)
class Decision:
    """The verdict, and the labels Linkerd puts on `inbound_*_authz_*_total` for it."""

    allowed: bool
    srv_kind: str
    srv_name: str
    authz_kind: str = ""
    authz_name: str = ""
    audit_denied: bool = False  # admitted only because the port is in audit mode
    route_kind: str = ""  # per HTTP request: "HTTPRoute" or "default"; "" per connection
    route_name: str = ""
    not_found: bool = False  # the port has routes and none matched (denied: 404)

    @property
    def labels(self) -> tuple[tuple[str, str], ...]:
        """`inbound_*_authz_*_total` labels (HTTP decisions add the route's)."""
        out: tuple[tuple[str, str], ...] = (
            ("srv_kind", self.srv_kind),
            ("srv_name", self.srv_name),
            ("authz_kind", self.authz_kind),
            ("authz_name", self.authz_name),
        )
        if self.route_kind:
            out += (("route_kind", self.route_kind), ("route_name", self.route_name))
        return out

    @property
    def server_labels(self) -> tuple[tuple[str, str], ...]:
        """`inbound_http_route_not_found_total` labels: the server only, as Linkerd's."""
        return (("srv_kind", self.srv_kind), ("srv_name", self.srv_name))


@functools.lru_cache(maxsize=4096)  # a pod's clients are few; parsing is most of a decision
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def evaluate(
    policy: PortPolicy,
    client_identity: str | None,
    client_ip: str,
    *,
    method: str | None = None,
    path: str | None = None,
    header: Callable[[str], str | None] = _NO_HEADER,
) -> Decision:
    """Admit or deny one client (per connection; per request with `method` and `path`, and
    `header(lower-case name)` for routes that match headers)."""
    ip = _ip(client_ip)
    srv = (policy.server_kind, policy.server_name)
    authorizations = policy.authorizations
    route = ("", "")
    if path is not None:
        route = ("default", "default")
        if policy.routes:
            found = policy.route_for(method or "", path, header)
            if found is None:
                return Decision(False, *srv, not_found=True)
            route = (found.kind, found.name)
            authorizations = found.authorizations + authorizations
        elif method == "GET" and path.split("?", 1)[0] in policy.probe_paths:
            route = ("default", "probe")
    if ip is not None:  # an unparsable peer address matches no network: only audit admits it
        for authz in authorizations:
            if authz.admits(client_identity, ip):
                return Decision(True, *srv, authz.kind, authz.name, False, *route)
    if route == ("default", "probe"):
        return Decision(True, *srv, "default", "probe", False, *route)
    if policy.audit:
        return Decision(True, *srv, "default", "audit", True, *route)
    return Decision(False, *srv, "", "", False, *route)


def default_authorizations(
    name: str, cluster_networks: Sequence[Network]
) -> tuple[tuple[Authorization, ...], bool]:
    """(authorizations, audit) of default policy `name`; PolicyError when unknown."""
    if name not in DEFAULT_POLICIES:
        raise PolicyError(
            f"unknown default policy {name!r}; use one of {', '.join(DEFAULT_POLICIES)}"
        )
    if name in ("deny", "audit"):
        return (), name == "audit"
    networks = ALL_NETWORKS if name.startswith("all-") else tuple(cluster_networks)
    unauthenticated = name.endswith("-unauthenticated")
    identities = () if unauthenticated else (IdentityMatch(),)
    return (Authorization("default", name, networks, unauthenticated, identities),), False


def default_port_policy(
    port: int,
    name: str,
    cluster_networks: Sequence[Network],
    *,
    probe_paths: Iterable[str] = (),
    protocol: str = "unknown",
) -> PortPolicy:
    """The policy of a port no Server selects: default policy `name`."""
    authorizations, audit = default_authorizations(name, cluster_networks)
    return PortPolicy(
        port, "default", name, protocol, authorizations, audit, tuple(sorted(set(probe_paths)))
    )


@dataclass(frozen=True)
class ResolvedDefault:
    name: str
    source: str  # "pod", "workload", "namespace", "install"
    problems: tuple[str, ...] = field(default=())


def resolve_default_policy(
    install_default: str,
    namespace_annotations: Mapping[str, str] | None = None,
    workload_annotations: Mapping[str, str] | None = None,
    pod_annotations: Mapping[str, str] | None = None,
) -> ResolvedDefault:
    """The default policy of one pod: pod, then workload, then namespace, then install."""
    problems: list[str] = []
    for source, given in (
        ("pod", pod_annotations),
        ("workload", workload_annotations),
        ("namespace", namespace_annotations),
    ):
        value = (given or {}).get(DEFAULT_POLICY_ANNOTATION)
        if value is None:
            continue
        if value.strip() in DEFAULT_POLICIES:
            return ResolvedDefault(value.strip(), source, tuple(problems))
        problems.append(
            f"{source} annotation {DEFAULT_POLICY_ANNOTATION}={value!r} is not one of "
            f"{', '.join(DEFAULT_POLICIES)}; ignored"
        )
    if install_default not in DEFAULT_POLICIES:
        raise PolicyError(
            f"unknown default policy {install_default!r}; use one of {', '.join(DEFAULT_POLICIES)}"
        )
    return ResolvedDefault(install_default, "install", tuple(problems))


def policy_to_dict(policy: PortPolicy) -> dict[str, Any]:
    return {
        "port": policy.port,
        "server": {"kind": policy.server_kind, "name": policy.server_name},
        "protocol": policy.protocol,
        "audit": policy.audit,
        "probePaths": list(policy.probe_paths),
        "authorizations": [a.to_dict() for a in policy.authorizations],
        **({"routes": [r.to_dict() for r in policy.routes]} if policy.routes else {}),
    }


def _field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PolicyError(f"{where}.{key}: expected {kind.__name__}")
    return value


def _identity_from_dict(data: object, where: str) -> IdentityMatch:
    if not isinstance(data, dict) or len(data) != 1:
        raise PolicyError(f"{where}: expected one of {{exact}}, {{suffix}}, {{any: true}}")
    if "exact" in data:
        return IdentityMatch(exact=_field(data, "exact", str, where))
    if "suffix" in data:
        return IdentityMatch(suffix=_field(data, "suffix", str, where))
    if data.get("any") is True:
        return IdentityMatch()
    raise PolicyError(f"{where}: expected one of {{exact}}, {{suffix}}, {{any: true}}")


def _authorization_from_dict(data: object, where: str) -> Authorization:
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: expected an object")
    networks = []
    for i, n in enumerate(_field(data, "networks", list, where)):
        w = f"{where}.networks[{i}]"
        if not isinstance(n, dict):
            raise PolicyError(f"{w}: expected an object")
        excepted = n.get("except") or []
        if not isinstance(excepted, list):
            raise PolicyError(f"{w}.except: expected a list")
        networks.append(Network.parse(n.get("cidr"), excepted, w))
    identities = tuple(
        _identity_from_dict(m, f"{where}.identities[{i}]")
        for i, m in enumerate(_field(data, "identities", list, where))
    )
    return Authorization(
        kind=_field(data, "kind", str, where),
        name=_field(data, "name", str, where),
        networks=tuple(networks),
        unauthenticated=_field(data, "unauthenticated", bool, where),
        identities=identities,
    )


def policy_from_dict(data: object) -> PortPolicy:
    """Parse the wire form; PolicyError naming the field that is wrong."""
    if not isinstance(data, dict):
        raise PolicyError("policy: expected an object")
    port = _field(data, "port", int, "policy")
    if not 0 < port < 65536:
        raise PolicyError("policy.port: expected a port number from 1 to 65535")
    server = _field(data, "server", dict, "policy")
    protocol = _field(data, "protocol", str, "policy")
    if protocol not in PROTOCOLS:
        raise PolicyError(f"policy.protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    paths = _field(data, "probePaths", list, "policy")
    if not all(isinstance(p, str) for p in paths):
        raise PolicyError("policy.probePaths: expected a list of strings")
    routes = data.get("routes") or []
    if not isinstance(routes, list):
        raise PolicyError("policy.routes: expected a list")
    return PortPolicy(
        port=port,
        server_kind=_field(server, "kind", str, "policy.server"),
        server_name=_field(server, "name", str, "policy.server"),
        protocol=protocol,
        authorizations=tuple(
            _authorization_from_dict(a, f"policy.authorizations[{i}]")
            for i, a in enumerate(_field(data, "authorizations", list, "policy"))
        ),
        audit=_field(data, "audit", bool, "policy"),
        probe_paths=tuple(paths),
        routes=tuple(_route_from_dict(r, f"policy.routes[{i}]") for i, r in enumerate(routes)),
    )


def _route_from_dict(data: object, where: str) -> PortRoute:
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: expected an object")
    try:
        matches = tuple(
            match_from_dict(m, f"{where}.matches[{i}]")
            for i, m in enumerate(_field(data, "matches", list, where))
        )
    except RouteError as exc:
        raise PolicyError(str(exc)) from None
    if not matches:
        raise PolicyError(f"{where}.matches: expected at least one match")
    created = data.get("created", "")
    return PortRoute(
        name=_field(data, "name", str, where),
        group=_field(data, "group", str, where),
        matches=matches,
        authorizations=tuple(
            _authorization_from_dict(a, f"{where}.authorizations[{i}]")
            for i, a in enumerate(_field(data, "authorizations", list, where))
        ),
        created=created if isinstance(created, str) else "",
    )
