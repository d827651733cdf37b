"""The policy.lacewing.io resources, parsed from Kubernetes dicts, and compiled per (pod, port).

`parse_resource(obj)` turns one Server, AuthorizationPolicy, MeshTLSAuthentication or
NetworkAuthentication (any version of the `policy.lacewing.io` group) into a frozen model, or
raises `PolicyError` with one line naming the resource and the field:

    Server shop/web-http: spec.port: 70000 is not a port number (1-65535) or a port name

The same parser backs the admission webhook (what it rejects) and the controller's sources
(what they index; an invalid resource is left out and reported, as if it did not exist).
`pod_from_object` keeps what policy needs of a Pod: labels, annotations, container ports by
name and number, and the paths of its HTTP kubelet probes per port.

`PolicyIndex` is one immutable snapshot of all of that plus the namespaces' annotations and
the install settings (`PolicyConfig`); `PolicyIndex.port_policy(ns, pod, port)` compiles:

1. The Servers of the pod's namespace whose podSelector matches the pod and whose port is
   one of the pod's container ports (by number, or by name: Linkerd considers only ports in
   the pod spec). Two Servers selecting the same port: the older one wins (creation time,
   then name), as Linkerd's admission would have refused the second.
2. No Server: the pod's default policy (`core.policy.resolve_default_policy`: pod, workload,
   namespace annotation, install default), `server_kind="default"`.
3. A Server: one authorization per AuthorizationPolicy in its namespace whose targetRef is
   that Server or the Namespace, in name order. Its networks are the referenced
   NetworkAuthentication's (all networks without one); its identities are the referenced
   MeshTLSAuthentication's (`identities` and `identityRefs` to ServiceAccounts or
   Namespaces) or the referenced ServiceAccount's; with neither, unauthenticated clients are
   admitted. A policy whose authentication does not exist (yet) authorizes nobody: it is
   left out, so a missing reference fails closed. Then the Server's `accessPolicy` (default
   `deny`) decides the rest: `audit` turns audit on, another default policy adds its
   authorization after the explicit ones.
   AuthorizationPolicies that target an HTTPRoute are accepted but not compiled yet (routes
   are not built), so they authorize nothing.
4. The pod's HTTP probe paths on that port become `probe_paths` (both cases).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from lacewing.core.policy import (
    ALL_NETWORKS,
    DEFAULT_CLUSTER_NETWORKS,
    DEFAULT_POLICIES,
    PROTOCOLS,
    Authorization,
    IdentityMatch,
    Network,
    PolicyError,
    PortPolicy,
    default_authorizations,
    default_port_policy,
    parse_networks,
    resolve_default_policy,
)

__all__ = [
    "GROUP",
    "KINDS",
    "AuthorizationPolicy",
    "LabelSelector",
    "MeshTLSAuthentication",
    "NetworkAuthentication",
    "PodPorts",
    "PolicyConfig",
    "PolicyIndex",
    "Ref",
    "Resource",
    "Server",
    "parse_resource",
    "pod_from_object",
]

GROUP: Final = "policy.lacewing.io"
KINDS: Final = ("Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication")
_IDENTITY_INFIX = ".serviceaccount.identity.lacewing."
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
Obj = Mapping[str, Any]


@dataclass(frozen=True)
class LabelSelector:
    """A Kubernetes label selector; the empty one selects every pod."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels):
            return False
        for key, op, values in self.expressions:
            present = key in labels
            if op == "In" and not (present and labels[key] in values):
                return False
            if op == "NotIn" and present and labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True)
class Ref:
    kind: str
    name: str
    group: str = ""
    namespace: str | None = None


@dataclass(frozen=True)
class Server:
    namespace: str
    name: str
    selector: LabelSelector
    port: int | str
    protocol: str = "unknown"
    access_policy: str = "deny"
    created: str = ""


@dataclass(frozen=True)
class AuthorizationPolicy:
    namespace: str
    name: str
    target: Ref
    authentications: tuple[Ref, ...]


@dataclass(frozen=True)
class MeshTLSAuthentication:
    namespace: str
    name: str
    identities: tuple[IdentityMatch, ...] = ()
    identity_refs: tuple[Ref, ...] = ()


@dataclass(frozen=True)
class NetworkAuthentication:
    namespace: str
    name: str
    networks: tuple[Network, ...]


Resource = Server | AuthorizationPolicy | MeshTLSAuthentication | NetworkAuthentication


class _Where:
    """Prefixes every PolicyError with `Kind ns/name:`."""

    def __init__(self, kind: str, namespace: str, name: str) -> None:
        self.prefix = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"

    def fail(self, path: str, problem: str) -> PolicyError:
        return PolicyError(f"{self.prefix}: {path}: {problem}")


def _mapping(value: object, path: str, where: _Where, required: bool = True) -> Obj:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise where.fail(path, "expected an object" if value is not None else "is required")
    return value


def _list(value: object, path: str, where: _Where) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.fail(path, "expected a list")
    return value


def _string(value: object, path: str, where: _Where) -> str:
    if not isinstance(value, str) or not value:
        raise where.fail(path, "expected a non-empty string")
    return value


def _selector(value: object, path: str, where: _Where) -> LabelSelector:
    data = _mapping(value, path, where)
    labels = _mapping(data.get("matchLabels"), f"{path}.matchLabels", where, required=False)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise where.fail(f"{path}.matchLabels", "expected a map of strings")
    expressions = []
    for i, e in enumerate(_list(data.get("matchExpressions"), f"{path}.matchExpressions", where)):
        p = f"{path}.matchExpressions[{i}]"
        e = _mapping(e, p, where)
        key, op = _string(e.get("key"), f"{p}.key", where), e.get("operator")
        if op not in _OPERATORS:
            raise where.fail(f"{p}.operator", f"{op!r} is not one of {', '.join(_OPERATORS)}")
        values = _list(e.get("values"), f"{p}.values", where)
        if not all(isinstance(v, str) for v in values):
            raise where.fail(f"{p}.values", "expected a list of strings")
        if (op in ("In", "NotIn")) != bool(values):
            raise where.fail(
                f"{p}.values", f"{op} {'needs' if values == [] else 'takes no'} values"
            )
        expressions.append((key, str(op), tuple(values)))
    return LabelSelector(tuple(sorted(labels.items())), tuple(expressions))


def _port(value: object, where: _Where) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value < 65536:
            raise where.fail("spec.port", f"{value} is not a port number (1-65535) or a port name")
        return value
    if isinstance(value, str):
        if len(value) <= 15 and "--" not in value and _PORT_NAME.match(value):
            return value
        raise where.fail(
            "spec.port",
            f"{value!r} is not a port number (1-65535) or a port name "
            "(up to 15 lowercase letters, digits and '-', with a letter)",
        )
    raise where.fail("spec.port", "expected a port number or a port name")


def _ref(value: object, path: str, where: _Where) -> Ref:
    data = _mapping(value, path, where)
    group = data.get("group") or ""
    namespace = data.get("namespace") or None
    if not isinstance(group, str) or (namespace is not None and not isinstance(namespace, str)):
        raise where.fail(path, "group and namespace must be strings")
    return Ref(
        _string(data.get("kind"), f"{path}.kind", where),
        _string(data.get("name"), f"{path}.name", where),
        group,
        namespace,
    )


def _policy_group(ref: Ref, path: str, where: _Where) -> None:
    if ref.group not in ("", GROUP):
        raise where.fail(f"{path}.group", f"{ref.kind} lives in {GROUP}, not {ref.group!r}")


def _core_group(ref: Ref, path: str, where: _Where) -> None:
    if ref.group:
        raise where.fail(f"{path}.group", f"{ref.kind} is in the core group: leave group empty")


def _server(spec: Obj, ns: str, name: str, meta: Obj, where: _Where) -> Server:
    protocol = spec.get("proxyProtocol", "unknown")
    if protocol not in PROTOCOLS:
        raise where.fail("spec.proxyProtocol", f"{protocol!r} is not one of {', '.join(PROTOCOLS)}")
    access = spec.get("accessPolicy", "deny")
    if access not in DEFAULT_POLICIES:
        raise where.fail(
            "spec.accessPolicy", f"{access!r} is not one of {', '.join(DEFAULT_POLICIES)}"
        )
    return Server(
        ns,
        name,
        _selector(spec.get("podSelector"), "spec.podSelector", where),
        _port(spec.get("port"), where),
        str(protocol),
        str(access),
        str(meta.get("creationTimestamp") or ""),
    )


def _authorization_policy(spec: Obj, ns: str, name: str, where: _Where) -> AuthorizationPolicy:
    target = _ref(spec.get("targetRef"), "spec.targetRef", where)
    if target.kind in ("Server", "HTTPRoute"):
        _policy_group(target, "spec.targetRef", where)
    elif target.kind == "Namespace":
        _core_group(target, "spec.targetRef", where)
        if target.name != ns:
            raise where.fail(
                "spec.targetRef.name", f"a Namespace target must be the policy's own ({ns})"
            )
    else:
        raise where.fail(
            "spec.targetRef.kind", f"{target.kind!r}: target a Server, an HTTPRoute or a Namespace"
        )
    if target.namespace not in (None, ns):
        raise where.fail("spec.targetRef.namespace", f"the target must be in namespace {ns}")
    refs = []
    counts = {"identity": 0, "network": 0}
    items = spec.get("requiredAuthenticationRefs")
    for i, item in enumerate(_list(items, "spec.requiredAuthenticationRefs", where)):
        path = f"spec.requiredAuthenticationRefs[{i}]"
        ref = _ref(item, path, where)
        if ref.kind == "MeshTLSAuthentication":
            _policy_group(ref, path, where)
            counts["identity"] += 1
        elif ref.kind == "ServiceAccount":
            _core_group(ref, path, where)
            counts["identity"] += 1
        elif ref.kind == "NetworkAuthentication":
            _policy_group(ref, path, where)
            counts["network"] += 1
        else:
            raise where.fail(
                f"{path}.kind",
                f"{ref.kind!r}: use MeshTLSAuthentication, NetworkAuthentication or ServiceAccount",
            )
        refs.append(ref)
    if not refs:
        raise where.fail(
            "spec.requiredAuthenticationRefs",
            "at least one authentication is required "
            "(a NetworkAuthentication of 0.0.0.0/0 and ::/0 admits every client)",
        )
    if counts["identity"] > 1:
        raise where.fail(
            "spec.requiredAuthenticationRefs",
            "at most one MeshTLSAuthentication or ServiceAccount (list identities in one)",
        )
    if counts["network"] > 1:
        raise where.fail(
            "spec.requiredAuthenticationRefs",
            "at most one NetworkAuthentication (list its networks in one)",
        )
    return AuthorizationPolicy(ns, name, target, tuple(refs))


def _mesh_tls(spec: Obj, ns: str, name: str, where: _Where) -> MeshTLSAuthentication:
    identities = []
    for i, text in enumerate(_list(spec.get("identities"), "spec.identities", where)):
        path = f"spec.identities[{i}]"
        try:
            identities.append(IdentityMatch.parse(_string(text, path, where), path))
        except PolicyError as exc:
            raise PolicyError(f"{where.prefix}: {exc}") from None
    refs = []
    for i, item in enumerate(_list(spec.get("identityRefs"), "spec.identityRefs", where)):
        path = f"spec.identityRefs[{i}]"
        ref = _ref(item, path, where)
        if ref.kind not in ("ServiceAccount", "Namespace"):
            raise where.fail(f"{path}.kind", f"{ref.kind!r}: use ServiceAccount or Namespace")
        _core_group(ref, path, where)
        refs.append(ref)
    if not identities and not refs:
        raise where.fail("spec", "list at least one of identities or identityRefs")
    return MeshTLSAuthentication(ns, name, tuple(identities), tuple(refs))


def _network_authn(spec: Obj, ns: str, name: str, where: _Where) -> NetworkAuthentication:
    networks = []
    for i, item in enumerate(_list(spec.get("networks"), "spec.networks", where)):
        path = f"spec.networks[{i}]"
        data = _mapping(item, path, where)
        excepted = _list(data.get("except"), f"{path}.except", where)
        try:
            networks.append(Network.parse(data.get("cidr"), excepted, path))
        except PolicyError as exc:
            raise PolicyError(f"{where.prefix}: {exc}") from None
    if not networks:
        raise where.fail("spec.networks", "list at least one network")
    return NetworkAuthentication(ns, name, tuple(networks))


def parse_resource(obj: object) -> Resource:
    """One policy resource from its Kubernetes dict; PolicyError (one line) if invalid."""
    if not isinstance(obj, Mapping):
        raise PolicyError("a policy resource must be an object")
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    where = _Where(str(kind), ns, name)
    if kind not in KINDS:
        raise PolicyError(f"{kind!r} is not a policy kind ({', '.join(KINDS)})")
    if not isinstance(api_version, str) or api_version.partition("/")[0] != GROUP:
        raise where.fail("apiVersion", f"{api_version!r}: expected {GROUP}/<version>")
    if not name:
        raise where.fail("metadata.name", "is required")
    if not ns:
        raise where.fail("metadata.namespace", "is required (policy resources are namespaced)")
    spec = _mapping(obj.get("spec"), "spec", where)
    if kind == "Server":
        return _server(spec, ns, name, meta, where)
    if kind == "AuthorizationPolicy":
        return _authorization_policy(spec, ns, name, where)
    if kind == "MeshTLSAuthentication":
        return _mesh_tls(spec, ns, name, where)
    return _network_authn(spec, ns, name, where)


@dataclass(frozen=True)
class PodPorts:
    """What policy needs of one Pod."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[tuple[str, int], ...] = ()  # (name or "", containerPort)
    probes: tuple[tuple[int, str], ...] = ()  # (port, path) of HTTP probes
    workload_annotations: Mapping[str, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.namespace, self.name, self.ports, self.probes))

    def port_numbers(self) -> set[int]:
        return {n for _, n in self.ports}

    def named(self, name: str) -> int | None:
        return next((n for p, n in self.ports if p == name), None)


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def pod_from_object(pod: Obj) -> PodPorts:
    """Labels, annotations, container ports and HTTP probe paths of a Kubernetes Pod dict."""
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), Mapping) else {}
    spec = pod.get("spec") if isinstance(pod.get("spec"), Mapping) else {}
    assert isinstance(meta, Mapping) and isinstance(spec, Mapping)
    ports: list[tuple[str, int]] = []
    probes: list[tuple[int | str, str]] = []
    for c in spec.get("containers") or []:
        if not isinstance(c, Mapping):
            continue
        for p in c.get("ports") or []:
            number = p.get("containerPort") if isinstance(p, Mapping) else None
            if isinstance(number, int) and not isinstance(number, bool):
                ports.append((str(p.get("name") or ""), number))
        for key in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = c.get(key)
            http = probe.get("httpGet") if isinstance(probe, Mapping) else None
            if isinstance(http, Mapping) and http.get("port") is not None:
                probes.append((http["port"], str(http.get("path") or "/")))
    by_name = {n: num for n, num in ports if n}
    resolved = set()
    for port, path in probes:
        number = by_name.get(port) if isinstance(port, str) and not port.isdigit() else int(port)
        if number is not None:
            resolved.add((number, path))
    return PodPorts(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        labels=_str_map(meta.get("labels")),
        annotations=_str_map(meta.get("annotations")),
        ports=tuple(ports),
        probes=tuple(sorted(resolved)),
    )


@dataclass(frozen=True)
class PolicyConfig:
    """The install's policy settings (`--default-policy`, `--cluster-networks`, trust domain)."""

    default_policy: str = "all-unauthenticated"
    cluster_networks: tuple[Network, ...] = field(
        default_factory=lambda: parse_networks(DEFAULT_CLUSTER_NETWORKS)
    )
    trust_domain: str = "cluster.local"


def _by_key(items: Iterable[Any]) -> dict[tuple[str, str], Any]:
    return {(i.namespace, i.name): i for i in items}


@dataclass(frozen=True)
class PolicyIndex:
    """Everything policy is compiled from, as one snapshot (see the module docstring)."""

    resources: tuple[Resource, ...] = ()
    pods: tuple[PodPorts, ...] = ()
    namespaces: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    config: PolicyConfig = field(default_factory=PolicyConfig)
    _pods: dict[tuple[str, str], PodPorts] = field(init=False, repr=False, compare=False)
    _servers: dict[str, list[Server]] = field(init=False, repr=False, compare=False)
    _policies: dict[str, list[AuthorizationPolicy]] = field(init=False, repr=False, compare=False)
    _mesh: dict[tuple[str, str], MeshTLSAuthentication] = field(
        init=False, repr=False, compare=False
    )
    _nets: dict[tuple[str, str], NetworkAuthentication] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        servers: dict[str, list[Server]] = {}
        policies: dict[str, list[AuthorizationPolicy]] = {}
        for r in self.resources:
            if isinstance(r, Server):
                servers.setdefault(r.namespace, []).append(r)
            elif isinstance(r, AuthorizationPolicy):
                policies.setdefault(r.namespace, []).append(r)
        for group in servers.values():
            group.sort(key=lambda s: (s.created, s.name))
        for plist in policies.values():
            plist.sort(key=lambda p: p.name)
        set_ = object.__setattr__
        set_(self, "_pods", _by_key(self.pods))
        set_(self, "_servers", servers)
        set_(self, "_policies", policies)
        set_(
            self,
            "_mesh",
            _by_key(r for r in self.resources if isinstance(r, MeshTLSAuthentication)),
        )
        set_(
            self,
            "_nets",
            _by_key(r for r in self.resources if isinstance(r, NetworkAuthentication)),
        )

    def __hash__(self) -> int:
        return hash((self.resources, self.pods))

    def pod(self, namespace: str, name: str) -> PodPorts | None:
        return self._pods.get((namespace, name))

    def server_for(self, pod: PodPorts, port: int) -> Server | None:
        for server in self._servers.get(pod.namespace, []):
            if not server.selector.matches(pod.labels):
                continue
            if isinstance(server.port, int):
                if server.port == port and port in pod.port_numbers():
                    return server
            elif pod.named(server.port) == port:
                return server
        return None

    def port_policy(self, namespace: str, pod_name: str, port: int) -> PortPolicy | None:
        """The compiled policy of one pod's port; None when the pod is not known."""
        pod = self.pod(namespace, pod_name)
        if pod is None:
            return None
        probes = tuple(sorted({path for p, path in pod.probes if p == port}))
        server = self.server_for(pod, port)
        networks = self.config.cluster_networks
        if server is None:
            resolved = resolve_default_policy(
                self.config.default_policy,
                self.namespaces.get(namespace),
                pod.workload_annotations,
                pod.annotations,
            )
            return default_port_policy(port, resolved.name, networks, probe_paths=probes)
        authorizations = [
            authz
            for policy in self._policies.get(namespace, [])
            if (policy.target.kind, policy.target.name)
            in (("Server", server.name), ("Namespace", namespace))
            and (authz := self._compile(policy)) is not None
        ]
        fallback, audit = default_authorizations(server.access_policy, networks)
        return PortPolicy(
            port,
            "server",
            server.name,
            server.protocol,
            tuple(authorizations) + fallback,
            audit,
            probes,
        )

    def _identity(self, namespace: str, service_account: str) -> str:
        return f"{service_account}.{namespace}{_IDENTITY_INFIX}{self.config.trust_domain}"

    def _compile(self, policy: AuthorizationPolicy) -> Authorization | None:
        networks: tuple[Network, ...] = ALL_NETWORKS
        identities: tuple[IdentityMatch, ...] | None = None
        for ref in policy.authentications:
            ns = ref.namespace or policy.namespace
            if ref.kind == "NetworkAuthentication":
                net = self._nets.get((ns, ref.name))
                if net is None:
                    return None
                networks = net.networks
            elif ref.kind == "ServiceAccount":
                identities = (IdentityMatch(exact=self._identity(ns, ref.name)),)
            else:
                mesh = self._mesh.get((ns, ref.name))
                if mesh is None:
                    return None
                identities = mesh.identities + tuple(
                    IdentityMatch(exact=self._identity(r.namespace or mesh.namespace, r.name))
                    if r.kind == "ServiceAccount"
                    else IdentityMatch(
                        suffix=f".{r.name}{_IDENTITY_INFIX}{self.config.trust_domain}"
                    )
                    for r in mesh.identity_refs
                )
        return Authorization(
            "authorizationpolicy",
            policy.name,
            networks,
            unauthenticated=identities is None,
            identities=identities or (),
        )
