"""Authorization policy on a real local cluster (root): a matrix of clients and policies.

`lacewing local up` runs a cluster file whose later YAML documents are policy resources and
Namespaces, as on Kubernetes. Its `lacewing-policy` pod compiles them with the registry and
streams them over mTLS to every proxy, which enforces them on inbound traffic. Each case is one
request (or opaque connection) from a client pod, checked twice: by what the client got, and by
the server app's own log of what reached it (a denied request must never appear there).

    pc/good   meshed, service account good       pc/bad    meshed, service account bad
    pc/plain  not meshed (no identity; its IP is excepted from the `lan` network)
    pa/api    8080 Server api-http: MeshTLSAuthentication of ServiceAccount good
              8081 Server api-suffix: identities *.pc.serviceaccount...
              8082 Server api-net: NetworkAuthentication 10.42.0.0/24 except plain's IP
              9000 Server api-tcp (opaque): ServiceAccount good
    <ns>/<ns> one pod per namespace default: deny, authn (all-authenticated),
              cunauth (cluster-unauthenticated), cauthn (cluster-authenticated), audit;
              open (no annotation: the cluster's all-unauthenticated) also has 8081 with a
              Server and no authorization (denies everyone)
    pa/greeter 50051 Server greeter-grpc (gRPC): ServiceAccount good; a denied call is
              grpc-status 7 (PERMISSION_DENIED), as grpcio reports it
    pa/api    8083 Server api-routes (HTTP/1), no Server-wide authorization, two HTTPRoutes:
              api-books (gateway.networking.k8s.io, GET /books...: ServiceAccount good) and
              api-public (policy.lacewing.io, /public...: every network, no identity);
              anything else is 404 (no route), for every client
    pa/gw     50051 Server gw-grpc (gRPC), one HTTPRoute gw-metadata (POST
              /lw.Echo/Metadata: ServiceAccount good); the Unary method matches no route:
              NOT_FOUND
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.local.conftest import REPO, lacewing, leftovers, run_name

from lacewing.local.controlplane import with_control_plane
from lacewing.local.plan import plan_cluster
from lacewing.local.spec import parse_cluster

pytestmark = pytest.mark.root

NAME = run_name("lwpolmx")
SUFFIX = ".serviceaccount.identity.lacewing.cluster.local"
P = "policy.lacewing.io/v1beta1"
DEFAULTS = {
    "deny": "deny",
    "authn": "all-authenticated",
    "cunauth": "cluster-unauthenticated",
    "cauthn": "cluster-authenticated",
    "audit": "audit",
    "open": None,
}


def _app(http: str, tcp: str = "") -> list[str]:
    argv = [sys.executable, "-m", "tests.integration.local.policy_app", "--http", http]
    return argv + (["--tcp", tcp] if tcp else [])


def _workloads() -> dict[str, Any]:
    env = {"PYTHONPATH": str(REPO)}
    workloads: list[dict[str, Any]] = [
        {"name": "plain", "namespace": "pc", "meshed": False, "command": ["sleep", "infinity"]},
        {"name": "good", "namespace": "pc", "command": ["sleep", "infinity"]},
        {"name": "bad", "namespace": "pc", "command": ["sleep", "infinity"]},
        {
            "name": "api",
            "namespace": "pa",
            "ports": [
                {"name": "http", "port": 8080},
                {"name": "suffix", "port": 8081},
                {"name": "net", "port": 8082},
                {"name": "tcp", "port": 9000, "opaque": True},
                {"name": "routes", "port": 8083},
            ],
            "command": _app("8080,8081,8082,8083", "9000"),
            "env": env,
        },
    ]
    for name in ("greeter", "gw"):
        workloads.append(
            {
                "name": name,
                "namespace": "pa",
                "ports": [{"name": "grpc", "port": 50051}],
                "command": [sys.executable, "-m", "tests.integration.local.grpc_app", "server",
                            "50051"],
                "env": env,
            }
        )  # fmt: skip
    for ns in DEFAULTS:
        ports = [{"name": "http", "port": 8080}]
        if ns == "open":
            ports.append({"name": "locked", "port": 8081})
        http = ",".join(str(p["port"]) for p in ports)
        workloads.append(
            {"name": ns, "namespace": ns, "ports": ports, "command": _app(http), "env": env}
        )
    return {"workloads": workloads}


def _meta(name: str, ns: str = "pa") -> dict[str, str]:
    return {"name": name, "namespace": ns}


def _authz(
    name: str, server: str, *refs: tuple[str, str], target: dict[str, str] | None = None
) -> dict[str, Any]:
    required = [
        {
            "kind": kind,
            "name": ref,
            **(
                {"group": "policy.lacewing.io"} if kind != "ServiceAccount" else {"namespace": "pc"}
            ),
        }
        for kind, ref in refs
    ]
    return {
        "apiVersion": P,
        "kind": "AuthorizationPolicy",
        "metadata": _meta(name),
        "spec": {
            "targetRef": target
            or {"group": "policy.lacewing.io", "kind": "Server", "name": server},
            "requiredAuthenticationRefs": required,
        },
    }


def _server(name: str, port: str, protocol: str = "unknown", ns: str = "pa") -> dict[str, Any]:
    app = "api" if ns == "pa" else ns
    return {
        "apiVersion": P,
        "kind": "Server",
        "metadata": _meta(name, ns),
        "spec": {
            "podSelector": {"matchLabels": {"app": app}},
            "port": port,
            "proxyProtocol": protocol,
        },
    }


def _policy(plain_ip: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for ns, default in DEFAULTS.items():
        meta: dict[str, Any] = {"name": ns}
        if default:
            meta["annotations"] = {"config.lacewing.io/default-inbound-policy": default}
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
    docs += [
        _server("api-http", "http", "HTTP/1"),
        _authz("api-http-good", "api-http", ("ServiceAccount", "good")),
        _server("api-suffix", "suffix"),
        {
            "apiVersion": P,
            "kind": "MeshTLSAuthentication",
            "metadata": _meta("pc-all"),
            "spec": {"identities": [f"*.pc{SUFFIX}"]},
        },
        _authz("api-suffix-pc", "api-suffix", ("MeshTLSAuthentication", "pc-all")),
        _server("api-net", "net"),
        {
            "apiVersion": P,
            "kind": "NetworkAuthentication",
            "metadata": _meta("lan"),
            "spec": {"networks": [{"cidr": "10.42.0.0/24", "except": [f"{plain_ip}/32"]}]},
        },
        _authz("api-net-lan", "api-net", ("NetworkAuthentication", "lan")),
        _server("api-tcp", "tcp", "opaque"),
        _authz("api-tcp-good", "api-tcp", ("ServiceAccount", "good")),
        _server("open-locked", "locked", ns="open"),  # no authorization: denies
        {
            "apiVersion": P,
            "kind": "Server",
            "metadata": _meta("greeter-grpc"),
            "spec": {
                "podSelector": {"matchLabels": {"app": "greeter"}},
                "port": "grpc",
                "proxyProtocol": "gRPC",
            },
        },
        _authz("greeter-grpc-good", "greeter-grpc", ("ServiceAccount", "good")),
        *_route_policy(),
    ]
    return docs


def _http_route(name: str, server: str, group: str, match: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/{'v1' if group.startswith('gateway') else 'v1beta1'}",
        "kind": "HTTPRoute",
        "metadata": _meta(name),
        "spec": {
            "parentRefs": [{"group": "policy.lacewing.io", "kind": "Server", "name": server}],
            "rules": [{"matches": [match]}],
        },
    }


def _route_target(name: str, group: str) -> dict[str, str]:
    return {"group": group, "kind": "HTTPRoute", "name": name}


def _route_policy() -> list[dict[str, Any]]:
    """Route-scoped authorization: the Servers api-routes and gw-grpc, their routes."""
    gw, ours = "gateway.networking.k8s.io", "policy.lacewing.io"
    prefix = {"type": "PathPrefix", "value": "/books"}
    grpc_server = _server("gw-grpc", "grpc", "gRPC")
    grpc_server["spec"]["podSelector"] = {"matchLabels": {"app": "gw"}}
    return [
        _server("api-routes", "routes", "HTTP/1"),
        _http_route("api-books", "api-routes", gw, {"path": prefix, "method": "GET"}),
        _authz("api-books-good", "", ("ServiceAccount", "good"),
               target=_route_target("api-books", gw)),
        _http_route("api-public", "api-routes", ours,
                    {"path": {"type": "PathPrefix", "value": "/public"}}),
        {
            "apiVersion": P,
            "kind": "NetworkAuthentication",
            "metadata": _meta("everyone"),
            "spec": {"networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]},
        },
        _authz("api-public-all", "", ("NetworkAuthentication", "everyone"),
               target=_route_target("api-public", ours)),
        grpc_server,
        _http_route("gw-metadata", "gw-grpc", gw,
                    {"path": {"type": "Exact", "value": "/lw.Echo/Metadata"}, "method": "POST"}),
        _authz("gw-metadata-good", "", ("ServiceAccount", "good"),
               target=_route_target("gw-metadata", gw)),
    ]  # fmt: skip


# (case, client pod, target, expected client result, app pod that would log it)
CASES: list[tuple[str, str, str, object]] = [
    ("sa-allowed", "good", "http://api.pa:8080", 200),
    ("sa-wrong", "bad", "http://api.pa:8080", 403),
    ("sa-unmeshed", "plain", "http://api.pa:8080", 403),
    ("suffix-good", "good", "http://api.pa:8081", 200),
    ("suffix-bad", "bad", "http://api.pa:8081", 200),
    ("suffix-unmeshed", "plain", "http://api.pa:8081", 403),
    ("net-meshed", "good", "http://api.pa:8082", 200),
    ("net-meshed-2", "bad", "http://api.pa:8082", 200),
    ("net-excepted", "plain", "http://api.pa:8082", 403),
    ("tcp-allowed", "good", "tcp://api.pa:9000", "echoed"),
    ("tcp-wrong", "bad", "tcp://api.pa:9000", "closed"),
    ("tcp-unmeshed", "plain", "tcp://api.pa:9000", "closed"),
    ("deny-meshed", "good", "http://deny.deny:8080", 403),
    ("deny-unmeshed", "plain", "http://deny.deny:8080", 403),
    ("authn-meshed", "good", "http://authn.authn:8080", 200),
    ("authn-unmeshed", "plain", "http://authn.authn:8080", 403),
    ("cunauth-unmeshed", "plain", "http://cunauth.cunauth:8080", 200),
    ("cauthn-meshed", "bad", "http://cauthn.cauthn:8080", 200),
    ("cauthn-unmeshed", "plain", "http://cauthn.cauthn:8080", 403),
    ("audit-unmeshed", "plain", "http://audit.audit:8080", 200),
    ("open-unmeshed", "plain", "http://open.open:8080", 200),
    ("locked-meshed", "good", "http://open.open:8081", 403),
    ("locked-unmeshed", "plain", "http://open.open:8081", 403),
    ("grpc-allowed", "good", "grpc://greeter.pa:50051", "OK"),
    ("grpc-wrong", "bad", "grpc://greeter.pa:50051", "PERMISSION_DENIED"),
    ("grpc-unmeshed", "plain", "grpc://greeter.pa:50051", "PERMISSION_DENIED"),
    # route-scoped (port 8083: a Server whose HTTPRoutes say what it serves)
    ("route-books-good", "good", "http://api.pa:8083/books", 200),
    ("route-books-bad", "bad", "http://api.pa:8083/books", 403),
    ("route-books-unmeshed", "plain", "http://api.pa:8083/books", 403),
    ("route-public-unmeshed", "plain", "http://api.pa:8083/public", 200),
    ("route-public-bad", "bad", "http://api.pa:8083/public", 200),
    ("route-none-good", "good", "http://api.pa:8083/elsewhere", 404),
    ("route-none-unmeshed", "plain", "http://api.pa:8083/elsewhere", 404),
    ("route-prefix-is-a-segment", "good", "http://api.pa:8083/bookshelf", 404),
    ("grpc-route-good", "good", "grpc://gw.pa:50051/Metadata", "OK"),
    ("grpc-route-bad", "bad", "grpc://gw.pa:50051/Metadata", "PERMISSION_DENIED"),
    ("grpc-route-none", "good", "grpc://gw.pa:50051/Unary", "NOT_FOUND"),
]


def _app_pod(target: str) -> str:
    host = re.match(r"^\w+://([a-z]+)\.", target)
    assert host
    return f"{host.group(1)}-0"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    workloads = _workloads()
    plan = plan_cluster(NAME, with_control_plane(parse_cluster(workloads), Path("/nonexistent")))
    plain_ip = plan.pod("plain-0").ip
    text = yaml.safe_dump_all([workloads, *_policy(plain_ip)], sort_keys=False)
    path = tmp_path_factory.mktemp("policy") / "cluster.yaml"
    path.write_text(text)
    try:
        up = lacewing(
            "local", "up", "-f", str(path), "--name", NAME, "--timeout", "150", timeout=200
        )
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        out: dict[str, dict[str, Any]] = {}
        for client in ("good", "bad", "plain"):
            mine = [(c, t) for c, who, t, _ in CASES if who == client]
            argv = [
                sys.executable,
                "-m",
                "tests.integration.local.policy_probe",
                *(f"{t}/{c}" for c, t in mine),
            ]
            done = lacewing("local", "exec", "--name", NAME, f"{client}-0", "--", *argv)
            assert done.returncode == 0, done.stderr
            lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
            assert len(lines) == len(mine), done.stdout
            for (case, _), line in zip(mine, lines, strict=True):
                out[case] = line
        logs = {}
        for pod in {_app_pod(t) for _, _, t, _ in CASES}:
            logs[pod] = lacewing("local", "logs", "--name", NAME, pod).stdout
        metrics = {
            pod: lacewing(
                "local",
                "exec",
                "--name",
                NAME,
                pod,
                "--",
                sys.executable,
                "-c",
                "import urllib.request as u;"
                "print(u.urlopen('http://127.0.0.1:4191/metrics', timeout=5).read().decode())",
            ).stdout
            for pod in ("audit-0", "api-0")
        }
        out["_"] = {"logs": logs, "audit_metrics": metrics["audit-0"], "api": metrics["api-0"]}
        yield out
    finally:
        lacewing("local", "down", "--name", NAME, timeout=120)
        assert not leftovers(NAME)


@pytest.mark.parametrize(("case", "client", "target", "expected"), CASES, ids=[c[0] for c in CASES])
def test_case(
    results: dict[str, dict[str, Any]], case: str, client: str, target: str, expected: object
) -> None:
    got = results[case]
    assert got["status"] == expected, got
    log = results["_"]["logs"][_app_pod(target)]
    reached = f"/{case}" in log or f" {case}\n" in log
    allowed = expected in (200, "echoed", "OK")
    assert reached == allowed, f"{case}: app log says reached={reached}"
    if allowed and expected in (200, "OK"):
        assert got["body"].startswith(_app_pod(target)), got  # the app itself answered


def test_audit_mode_admits_and_counts_what_it_would_deny(
    results: dict[str, dict[str, Any]],
) -> None:
    metrics = results["_"]["audit_metrics"]
    lines = [m for m in metrics.splitlines() if m.startswith("inbound_http_authz_allow_total{")]
    audited = [m for m in lines if 'authz_kind="default"' in m and 'authz_name="audit"' in m]
    assert audited and float(audited[0].rsplit(" ", 1)[1]) >= 1, lines


def _samples(metrics: str, family: str, **labels: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(family + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_route_decisions_are_counted_with_the_route_as_linkerd_labels_them(
    results: dict[str, dict[str, Any]],
) -> None:
    api = results["_"]["api"]
    # three requests matched no route of api-routes (two /elsewhere, one /bookshelf)
    assert _samples(api, "inbound_http_route_not_found_total", srv_kind="server",
                    srv_name="api-routes") == 3, api  # fmt: skip
    assert _samples(api, "inbound_http_authz_allow_total", srv_name="api-routes",
                    authz_name="api-books-good", route_kind="HTTPRoute",
                    route_name="api-books") == 1  # fmt: skip
    assert _samples(api, "inbound_http_authz_deny_total", srv_name="api-routes",
                    route_kind="HTTPRoute", route_name="api-books") == 2  # fmt: skip
    assert _samples(api, "inbound_http_authz_allow_total", srv_name="api-routes",
                    authz_name="api-public-all", route_name="api-public") == 2  # fmt: skip
    # a Server without routes: Linkerd's default route
    assert _samples(api, "inbound_http_authz_allow_total", srv_name="api-http",
                    route_kind="default", route_name="default") >= 1  # fmt: skip
