"""`lacewing authz [-n NS] deploy/NAME|pod/NAME`: the authorization policy of a workload's ports.

How it works: the command reads what the policy controller reads (the namespace's Servers,
AuthorizationPolicies, MeshTLSAuthentications and NetworkAuthentications, its Pods and the
Namespace, and the install's default policy and cluster networks from `lacewing-config`) and
compiles them with the controller's own code (`controller.policy.index_from_objects`), so what
it prints is what the controller streams to the proxies. For a Deployment, its pods are those
its selector matches; the first one (by name) stands for all, since they share a template.
One row per authorization of each declared container port:

    PORT  SERVER                       AUTHORIZATION                         CLIENTS
    8080  server/echo-http             authorizationpolicy/echo-from-client  default.shop...
    8080  server/echo-http             default/probe                         GET / (kubelet probes)
    9090  default/all-unauthenticated  default/all-unauthenticated           any client

A Server with HTTPRoutes (those whose parent is the Server, of both groups) adds a row per
authorization of each route (`authorizationpolicy/NAME on httproute/ROUTE`), a
`httproute/ROUTE` row for a route with none of its own (the Server's apply), and
`(no route matches)` with `404` for what the routes leave out; the kubelet probe row goes,
as the probes' authorization does. A port that admits nobody has one row with
`(none: denied)`. Resources that do not validate
are left out, as the controller leaves them out, and named on stderr.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from lacewing.cli.commands.workloads import parse_workload, workload_pods
from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import UsageError

__all__ = ["HEADER", "AuthzOptions", "authz_rows", "command", "run", "table"]

Obj = dict[str, Any]
HEADER = ("PORT", "SERVER", "AUTHORIZATION", "CLIENTS")
_AUDITED = "any other client (allowed; counted as would-be denied)"


@dataclass(frozen=True)
class AuthzOptions:
    resource: str
    namespace: str = "default"


def _identity(match: Any) -> str:
    if match.exact is not None:
        return str(match.exact)
    return f"*{match.suffix}" if match.suffix is not None else "* (any meshed client)"


def _network(net: Any) -> str:
    excepted = f" except {', '.join(str(e) for e in net.excepted)}" if net.excepted else ""
    return f"{net.cidr}{excepted}"


def _clients(authz: Any) -> str:
    who = "any client" if authz.unauthenticated else ", ".join(map(_identity, authz.identities))
    networks = [_network(n) for n in authz.networks]
    if set(networks) == {"0.0.0.0/0", "::/0"}:
        return who
    return f"{who} from {', '.join(networks)}"


def authz_rows(policies: list[Any]) -> list[tuple[str, str, str, str]]:
    """Table rows of compiled `PortPolicy`s (pure)."""
    rows = []
    for policy in policies:
        server = f"{policy.server_kind}/{policy.server_name}"
        port = str(policy.port)
        authorizations = list(policy.authorizations)
        routed = any(r.authorizations for r in policy.routes)
        if not authorizations and not policy.probe_paths and not policy.audit and not routed:
            rows.append((port, server, "(none: denied)", ""))
            continue
        for route in policy.routes:
            on = f"httproute/{route.name}"
            if not route.authorizations:
                rows.append((port, server, on, "only the Server's authorizations"))
            for authz in route.authorizations:
                rows.append((port, server, f"{authz.kind}/{authz.name} on {on}", _clients(authz)))
        for authz in authorizations:
            rows.append((port, server, f"{authz.kind}/{authz.name}", _clients(authz)))
        if policy.probe_paths:
            paths = ", ".join(f"GET {p}" for p in policy.probe_paths)
            rows.append((str(policy.port), server, "default/probe", f"{paths} (kubelet probes)"))
        if policy.audit:
            rows.append((str(policy.port), server, "default/audit", _AUDITED))
        if policy.routes:
            rows.append((port, server, "(no route matches)", "404 for every client"))
    return rows


def table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _config(cluster: Any, namespace: str) -> Any:
    from lacewing.core.policy import parse_networks
    from lacewing.core.policy_index import PolicyConfig
    from lacewing.install.values import values_from_dict, values_from_yaml

    stored = cluster.get("v1", "ConfigMap", "lacewing-config", namespace)
    if stored is None:
        raise UsageError(
            f"lacewing is not installed in namespace {namespace!r} (no lacewing-config)",
            hint="install it (lacewing install | kubectl apply -f -) or pass -L NAMESPACE",
        )
    data = (stored.get("data") or {}).get("values", "")
    values = values_from_dict(values_from_yaml(data, "the lacewing-config values"))
    return PolicyConfig(
        values.default_inbound_policy,
        parse_networks(values.cluster_networks),
        values.identity.trust_domain,
    )


def _server_routes(cluster: Any, ns: str) -> list[Obj]:
    """The namespace's HTTPRoutes with a Server parent, of both groups (the Gateway API's
    only when its CRDs are installed)."""
    from lacewing.core.inbound_routes import has_server_parent
    from lacewing.k8s.cluster import ClusterApiError

    found: list[Obj] = []
    for api_version in ("policy.lacewing.io/v1beta1", "gateway.networking.k8s.io/v1"):
        try:
            found += cluster.list(api_version, "HTTPRoute", ns)
        except ClusterApiError as exc:
            if exc.code != 404:
                raise
    return [r for r in found if has_server_parent(r)]


def run(options: AuthzOptions, ctx: GlobalOptions, out: Output) -> int:
    from lacewing.controller.policy import index_from_objects
    from lacewing.controller.policy.kubernetes import RESOURCE_KINDS
    from lacewing.core.policy_resources import GROUP
    from lacewing.k8s.cluster import Cluster, ClusterApiError

    kind, name = parse_workload(options.resource, "lacewing authz -n shop deploy/web")
    ns = options.namespace
    with Cluster.connect(ctx.kubeconfig, ctx.context) as cluster:
        config = _config(cluster, ctx.namespace)
        pods = cluster.list("v1", "Pod", ns)
        chosen = workload_pods(cluster, kind, name, ns, pods)
        resources: list[Obj] = []
        try:
            for resource_kind in RESOURCE_KINDS:
                resources += cluster.list(f"{GROUP}/v1beta1", resource_kind, ns)
        except ClusterApiError as exc:
            if exc.code != 404:
                raise
            raise UsageError(
                "the policy.lacewing.io CRDs are not installed",
                hint="lacewing install --crds | kubectl apply -f -",
            ) from None
        resources += _server_routes(cluster, ns)
        namespace = cluster.get("v1", "Namespace", ns)
    index, problems = index_from_objects(resources, pods, [namespace] if namespace else [], config)
    for problem in problems:
        out.warn(f"ignored (invalid): {problem}")
    pod = chosen[0]
    ports = sorted(
        {
            int(port["containerPort"])
            for container in (pod.get("spec") or {}).get("containers") or []
            for port in container.get("ports") or []
            if isinstance(port.get("containerPort"), int)
        }
    )
    if not ports:
        out.line(f"{kind.lower()} {ns}/{name} declares no container ports")
        return 0
    policies = [index.port_policy(ns, pod["metadata"]["name"], port) for port in ports]
    rows = authz_rows([p for p in policies if p is not None])
    for line in table([HEADER, *rows]):
        out.line(line)
    return 0


@click.command("authz")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.argument("resource")
@click.pass_obj
def command(g: GlobalOptions | None, namespace: str, resource: str) -> int:
    """The authorization policy of a workload's ports (deploy/NAME or pod/NAME)."""
    return run(AuthzOptions(resource, namespace), g or GlobalOptions(), Output())
