"""Policy compiled per (pod, port): what a Pod offers, the install settings, and the index.

`pod_from_object` keeps what policy needs of a Pod: labels, annotations, container ports by
name and number, and the paths of its HTTP kubelet probes per port.

`PolicyIndex` is one immutable snapshot of the parsed resources (`core.policy_resources`),
the pods, the namespaces' annotations and the install settings (`PolicyConfig`);
`PolicyIndex.port_policy(ns, pod, port)` compiles:

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
4. The Server's HTTPRoutes (`core.inbound_routes.ServerRoute`: a parentRef naming it, in
   its namespace) become `PortPolicy.routes`, oldest first, each with the authorizations of
   the AuthorizationPolicies whose targetRef is that route (kind HTTPRoute, its name, its
   group: an empty group means policy.lacewing.io), compiled as in 3. The Server's own
   authorizations (3) apply to every route as well (`core.policy.evaluate` tries the
   route's first); a request matching none of the routes is the proxy's 404.
5. The pod's HTTP probe paths on that port become `probe_paths`, unless the Server has
   HTTPRoutes (as in Linkerd: its routes then say what is served, probes included).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from lacewing.core.policy import (
    ALL_NETWORKS,
    DEFAULT_CLUSTER_NETWORKS,
    Authorization,
    IdentityMatch,
    Network,
    PortPolicy,
    PortRoute,
    default_authorizations,
    default_port_policy,
    parse_networks,
    resolve_default_policy,
)
from lacewing.core.policy_resources import (
    AuthorizationPolicy,
    MeshTLSAuthentication,
    NetworkAuthentication,
    Resource,
    Server,
    ServerRoute,
)

__all__ = ["PodPorts", "PolicyConfig", "PolicyIndex", "pod_from_object"]

_IDENTITY_INFIX: Final = ".serviceaccount.identity.lacewing."
Obj = Mapping[str, Any]


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
    probes: list[tuple[object, str]] = []
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
        target: int | None = None
        if isinstance(port, int) and not isinstance(port, bool):
            target = port
        elif isinstance(port, str):
            target = int(port) if port.isdigit() else by_name.get(port)
        if target is not None:  # a probe on a port the pod does not name is left out
            resolved.add((target, path))
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
    _routes: dict[str, list[ServerRoute]] = field(init=False, repr=False, compare=False)
    _mesh: dict[tuple[str, str], MeshTLSAuthentication] = field(
        init=False, repr=False, compare=False
    )
    _nets: dict[tuple[str, str], NetworkAuthentication] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        servers: dict[str, list[Server]] = {}
        policies: dict[str, list[AuthorizationPolicy]] = {}
        routes: dict[str, list[ServerRoute]] = {}
        for r in self.resources:
            if isinstance(r, Server):
                servers.setdefault(r.namespace, []).append(r)
            elif isinstance(r, AuthorizationPolicy):
                policies.setdefault(r.namespace, []).append(r)
            elif isinstance(r, ServerRoute):
                routes.setdefault(r.namespace, []).append(r)
        for group in servers.values():
            group.sort(key=lambda s: (s.created, s.name))
        for rlist in routes.values():
            rlist.sort(key=lambda r: (r.created, r.name, r.group))
        for plist in policies.values():
            plist.sort(key=lambda p: p.name)
        set_ = object.__setattr__
        set_(self, "_pods", _by_key(self.pods))
        set_(self, "_servers", servers)
        set_(self, "_policies", policies)
        set_(self, "_routes", routes)
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
        routes = self._server_routes(server)
        return PortPolicy(
            port,
            "server",
            server.name,
            server.protocol,
            tuple(authorizations) + fallback,
            audit,
            () if routes else probes,
            routes,
        )

    def _server_routes(self, server: Server) -> tuple[PortRoute, ...]:
        out = []
        for route in self._routes.get(server.namespace, []):
            if server.name not in route.servers:
                continue
            authorizations = tuple(
                authz
                for policy in self._policies.get(server.namespace, [])
                if policy.target.kind == "HTTPRoute"
                and policy.target.name == route.name
                and (policy.target.group or "policy.lacewing.io") == route.group
                and (authz := self._compile(policy)) is not None
            )
            out.append(PortRoute(route.name, route.group, route.matches, authorizations,
                                 route.created))  # fmt: skip
        return tuple(out)

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
