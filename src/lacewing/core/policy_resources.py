"""The policy.lacewing.io resources, parsed and validated from Kubernetes dicts.

`parse_resource(obj)` turns one Server, AuthorizationPolicy, MeshTLSAuthentication or
NetworkAuthentication (any version of the `policy.lacewing.io` group), or an HTTPRoute with
a Server parent (`core.inbound_routes`; either HTTPRoute group), into a frozen model, or
raises `PolicyError` with one line naming the resource and the field:

    Server shop/web-http: spec.port: 70000 is not a port number (1-65535) or a port name

The same parser backs the admission webhook (what it rejects) and the controller's sources
(what they index; an invalid resource is left out and reported, as if it did not exist).
Beyond the CRD's schema it checks what Linkerd's validator checks: ports in range and port
names well formed, CIDRs and `except` networks inside them, identities with `*` only as a
first label, a Namespace target only the policy's own, at least one authentication and at
most one identity and one network authentication per AuthorizationPolicy.
`core.policy_index` compiles the models per (pod, port).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from lacewing.core.inbound_routes import ServerRoute, parse_server_route
from lacewing.core.policy import (
    DEFAULT_POLICIES,
    PROTOCOLS,
    IdentityMatch,
    Network,
    PolicyError,
)
from lacewing.core.routes import API_GROUPS as ROUTE_GROUPS
from lacewing.core.routes import RouteError

__all__ = [
    "GROUP",
    "KINDS",
    "AuthorizationPolicy",
    "LabelSelector",
    "MeshTLSAuthentication",
    "NetworkAuthentication",
    "Ref",
    "Resource",
    "Server",
    "ServerRoute",
    "parse_resource",
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


Resource = (
    Server | AuthorizationPolicy | MeshTLSAuthentication | NetworkAuthentication | ServerRoute
)


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
    if target.kind == "Server":
        _policy_group(target, "spec.targetRef", where)
    elif target.kind == "HTTPRoute":
        if target.group not in ("", *ROUTE_GROUPS):
            raise where.fail(
                "spec.targetRef.group", f"an HTTPRoute is in {' or '.join(ROUTE_GROUPS)}"
            )
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
    if kind == "HTTPRoute":
        return _server_route(obj, where)
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


def _server_route(obj: Obj, where: _Where) -> ServerRoute:
    try:
        route = parse_server_route(obj)
    except RouteError as exc:
        raise PolicyError(f"{where.prefix}: {exc}") from None
    if route is None:
        raise where.fail("spec.parentRefs", "no parent of kind Server (policy.lacewing.io)")
    return route
