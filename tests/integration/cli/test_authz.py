"""`lacewing authz` on the API test bed (HTTPS): the policy the controller would stream."""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.integration.cli.conftest import CliResult
from tests.support.kubeapi import KubeAPI

from lacewing.install.credentials import generate
from lacewing.install.render import render_control_plane, render_crds
from lacewing.install.values import Values
from lacewing.k8s.cluster import Cluster

Lacewing = Callable[..., CliResult]
P = "policy.lacewing.io/v1beta1"
SHOP = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web"}]},
            },
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-abc", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "web",
                    "ports": [
                        {"name": "http", "containerPort": 8080},
                        {"name": "admin", "containerPort": 9090},
                    ],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
                }
            ]
        },
    },
    {
        "apiVersion": P,
        "kind": "Server",
        "metadata": {"name": "web-http", "namespace": "shop"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": "http"},
    },
    {
        "apiVersion": P,
        "kind": "MeshTLSAuthentication",
        "metadata": {"name": "bots", "namespace": "shop"},
        "spec": {"identities": ["*.bots.serviceaccount.identity.lacewing.cluster.local"]},
    },
    {
        "apiVersion": P,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "web-from-bots", "namespace": "shop"},
        "spec": {
            "targetRef": {"group": "policy.lacewing.io", "kind": "Server", "name": "web-http"},
            "requiredAuthenticationRefs": [
                {"group": "policy.lacewing.io", "kind": "MeshTLSAuthentication", "name": "bots"}
            ],
        },
    },
]


def _install(api: KubeAPI, *extra: dict[str, object]) -> None:
    values = Values()
    docs = render_crds(values) + render_control_plane(values, generate("lacewing", "cluster.local"))
    with Cluster.connect(str(api.kubeconfig)) as cluster:
        for doc in [*docs, *extra]:
            cluster.apply(doc)


def test_authz_lists_each_port_with_what_the_controller_compiles(
    kube_api: KubeAPI, lacewing: Lacewing
) -> None:
    _install(kube_api, *SHOP)
    result = lacewing("--kubeconfig", str(kube_api.kubeconfig), "authz", "-n", "shop", "deploy/web")
    assert result.code == 0, result.err
    rows = [line.split(None, 3) for line in result.out.splitlines()]
    assert rows == [
        ["PORT", "SERVER", "AUTHORIZATION", "CLIENTS"],
        ["8080", "server/web-http", "authorizationpolicy/web-from-bots",
         "*.bots.serviceaccount.identity.lacewing.cluster.local"],
        ["8080", "server/web-http", "default/probe", "GET /ready (kubelet probes)"],
        ["9090", "default/all-unauthenticated", "default/all-unauthenticated", "any client"],
    ]  # fmt: skip


def test_authz_shows_the_routes_of_a_server(kube_api: KubeAPI, lacewing: Lacewing) -> None:
    route = {
        "apiVersion": P,
        "kind": "HTTPRoute",
        "metadata": {"name": "web-books", "namespace": "shop"},
        "spec": {
            "parentRefs": [{"group": "policy.lacewing.io", "kind": "Server", "name": "web-http"}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/books"}}]}],
        },
    }
    outbound = {**route, "metadata": {"name": "web-out", "namespace": "shop"},
                "spec": {"parentRefs": [{"kind": "Service", "name": "web"}]}}  # fmt: skip
    on_route = {
        "apiVersion": P,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "books-from-bots", "namespace": "shop"},
        "spec": {
            "targetRef": {"group": "policy.lacewing.io", "kind": "HTTPRoute", "name": "web-books"},
            "requiredAuthenticationRefs": [
                {"group": "policy.lacewing.io", "kind": "MeshTLSAuthentication", "name": "bots"}
            ],
        },
    }
    _install(kube_api, *SHOP, route, outbound, on_route)
    result = lacewing("--kubeconfig", str(kube_api.kubeconfig), "authz", "-n", "shop", "deploy/web")
    assert result.code == 0, result.err
    assert result.err == ""  # the Service-parented route is the destination's, not a problem
    rows = [re.split(r"\s{2,}", line) for line in result.out.splitlines()]
    bots = "*.bots.serviceaccount.identity.lacewing.cluster.local"
    assert rows[1:4] == [
        ["8080", "server/web-http", "authorizationpolicy/books-from-bots on httproute/web-books",
         bots],
        ["8080", "server/web-http", "authorizationpolicy/web-from-bots", bots],
        ["8080", "server/web-http", "(no route matches)", "404 for every client"],
    ], result.out  # fmt: skip


def test_authz_mistakes_are_one_line(kube_api: KubeAPI, lacewing: Lacewing) -> None:
    config = ("--kubeconfig", str(kube_api.kubeconfig))
    result = lacewing(*config, "authz", "-n", "shop", "deploy/web")
    assert result.code != 0 and result.err.splitlines()[0] == (
        "Error: lacewing is not installed in namespace 'lacewing' (no lacewing-config)"
    )
    _install(kube_api, *SHOP)
    result = lacewing(*config, "authz", "-n", "shop", "svc/web")
    assert result.err.splitlines()[0] == "Error: 'svc/web' is not deploy/NAME or pod/NAME"
    result = lacewing(*config, "authz", "-n", "shop", "deploy/nope")
    assert result.err.splitlines()[0] == "Error: deployment shop/nope not found"
    assert "Traceback" not in result.err
