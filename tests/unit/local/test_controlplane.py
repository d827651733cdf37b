"""The local control plane as data, identity material, and what each proxy is told."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lacewing.core.identity import LocalTokenValidator
from lacewing.errors import UsageError
from lacewing.local.controlplane import (
    mesh_peers,
    proxy_env,
    proxy_identity_env,
    with_control_plane,
    write_identity_material,
    write_token,
)
from lacewing.local.plan import plan_cluster
from lacewing.local.spec import parse_cluster

SPEC = parse_cluster(
    {
        "workloads": [
            {"name": "web", "namespace": "shop", "replicas": 2,
             "ports": [{"name": "http", "port": 8080}], "command": ["web"]},
            {"name": "db", "namespace": "shop", "meshed": False,
             "ports": [{"name": "sql", "port": 5432}], "command": ["db"]},
            {"name": "bot", "namespace": "shop", "serviceAccount": "robot", "command": ["bot"]},
        ]
    }
)  # fmt: skip
DIR = Path("/run/lacewing/local/t1")
IDENTITY = DIR / "identity"


def test_control_plane_comes_first() -> None:
    plan = plan_cluster("t1", with_control_plane(SPEC, DIR))
    identity = plan.pods[0]
    assert (identity.name, identity.namespace, identity.meshed) == (
        "lacewing-identity-0", "lacewing", False,
    )  # fmt: skip
    argv = identity.workload.command
    assert argv[:5] == ("python", "-m", "lacewing.cli.main", "controller", "identity")
    assert argv[argv.index("--validator") + 1] == "local"
    assert argv[argv.index("--local-token-key-file") + 1] == str(IDENTITY / "token.key")
    destination = plan.pods[1]
    assert (destination.name, destination.namespace, destination.meshed) == (
        "lacewing-destination-0", "lacewing", False,
    )  # fmt: skip
    argv = destination.workload.command
    assert argv[:5] == ("python", "-m", "lacewing.cli.main", "controller", "destination")
    assert argv[argv.index("--source") + 1] == "local"
    assert argv[argv.index("--registry-file") + 1] == str(DIR / "registry.json")
    assert argv[argv.index("--issuer-dir") + 1] == str(IDENTITY / "issuer")
    assert argv[argv.index("--trust-anchors-file") + 1] == str(IDENTITY / "ca-bundle.crt")
    policy = plan.pods[2]
    assert (policy.name, policy.namespace, policy.meshed) == (
        "lacewing-policy-0",
        "lacewing",
        False,
    )
    argv = policy.workload.command
    assert argv[:5] == ("python", "-m", "lacewing.cli.main", "controller", "policy")
    assert argv[argv.index("--policy-file") + 1] == str(DIR / "policy.yaml")
    assert argv[argv.index("--registry-file") + 1] == str(DIR / "registry.json")
    assert argv[argv.index("--issuer-dir") + 1] == str(IDENTITY / "issuer")
    assert [p.name for p in plan.pods[3:]] == ["web-0", "web-1", "db-0", "bot-0"]


def test_reserved_and_too_long_names() -> None:
    clash = parse_cluster({"workloads": [{"name": "lacewing-identity", "command": ["x"]}]})
    with pytest.raises(UsageError, match="reserved for the control plane"):
        with_control_plane(clash, DIR)
    long = parse_cluster(
        {"workloads": [{"name": "vote-bot", "namespace": "emojivoto", "command": ["x"]}]}
    )
    with pytest.raises(UsageError, match=r"workloads\[0\]: the identity .* longer than 64"):
        with_control_plane(long, DIR)
    unmeshed = parse_cluster(
        {"workloads": [{"name": "vote-bot", "namespace": "emojivoto", "meshed": False,
                        "command": ["x"]}]}
    )  # fmt: skip
    assert with_control_plane(unmeshed, DIR).workloads[-1].name == "vote-bot"


def test_peers_name_meshed_endpoints_only() -> None:
    plan = plan_cluster("t1", with_control_plane(SPEC, DIR))
    web = "web.shop.serviceaccount.identity.lacewing.cluster.local"
    peers = dict(item.split("=") for item in mesh_peers(plan).split(","))
    assert peers == {
        "10.42.0.13:8080": web,  # web-0 (identity, destination, policy are .10 to .12)
        "10.42.0.14:8080": web,  # web-1
        "10.43.0.13:8080": web,  # the web Service's VIP
    }


def test_proxy_identity_env() -> None:
    plan = plan_cluster("t1", with_control_plane(SPEC, DIR))
    env = proxy_identity_env(plan, plan.pod("bot-0"), IDENTITY)
    assert env["LACEWING_IDENTITY_NAME"] == (
        "robot.shop.serviceaccount.identity.lacewing.cluster.local"
    )
    assert env["LACEWING_IDENTITY_SVC_ADDR"] == "10.42.0.10:8080"
    assert env["LACEWING_IDENTITY_TOKEN_FILE"] == str(IDENTITY / "tokens" / "bot-0.token")
    assert env["LACEWING_IDENTITY_TRUST_ANCHORS"] == str(IDENTITY / "ca-bundle.crt")


def test_material_and_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owners: list[tuple[str, int]] = []
    monkeypatch.setattr(os, "chown", lambda p, uid, gid: owners.append((p.name, uid)))
    identity = tmp_path / "identity"
    write_identity_material(identity)
    assert "BEGIN CERTIFICATE" in (identity / "ca-bundle.crt").read_text()
    assert (identity / "issuer" / "tls.key").stat().st_mode & 0o777 == 0o600
    plan = plan_cluster("t1", with_control_plane(SPEC, tmp_path))
    path = write_token(identity, plan.pod("bot-0"))
    assert owners == [("bot-0.token", 2102)]
    assert path.stat().st_mode & 0o777 == 0o600
    key = (identity / "token.key").read_text().strip().encode()
    review = LocalTokenValidator(key).check(path.read_text())
    assert review.username == "system:serviceaccount:shop:robot"
    assert os.path.basename(path) == "bot-0.token"


def test_proxy_env_merges_every_component() -> None:
    plan = plan_cluster("t1", with_control_plane(SPEC, DIR))
    env = proxy_env(plan, plan.pod("web-0"), DIR)
    assert env == {
        **proxy_identity_env(plan, plan.pod("web-0"), IDENTITY),
        "LACEWING_PROXY_DESTINATION_ADDR": "10.42.0.11:8086",  # lacewing-destination-0
        "LACEWING_PROXY_POLICY_ADDR": "10.42.0.12:8090",  # lacewing-policy-0
        "LACEWING_PROXY_POD_NAME": "web-0",
        "LACEWING_PROXY_POD_NAMESPACE": "shop",
        "LACEWING_PROXY_INBOUND_PORTS": "8080",
        "LACEWING_PROXY_TAP_LISTEN_ADDR": "0.0.0.0:4190",  # viz tap
    }


POLICY_FILE = """
workloads:
- {name: web, namespace: shop, ports: [{name: http, port: 8080}], command: [web]}
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  annotations: {config.lacewing.io/default-inbound-policy: deny}
---
apiVersion: policy.lacewing.io/v1beta1
kind: Server
metadata: {name: web-http, namespace: shop}
spec: {podSelector: {matchLabels: {app: web}}, port: http}
"""


def test_policy_documents_in_the_cluster_file_reach_the_policy_controller(
    tmp_path: Path,
) -> None:
    from lacewing.controller.policy import index_from_local
    from lacewing.core.policy_index import PolicyConfig
    from lacewing.local.controlplane import write_policy_file
    from lacewing.local.spec import load_cluster_file

    (tmp_path / "cluster.yaml").write_text(POLICY_FILE)
    spec = load_cluster_file(tmp_path / "cluster.yaml")
    assert [d["kind"] for d in spec.policy] == ["Namespace", "Server"]
    plan = plan_cluster("t1", with_control_plane(spec, tmp_path))
    assert plan.pod("lacewing-policy-0")
    written = write_policy_file(tmp_path, spec)
    import yaml

    documents = list(yaml.safe_load_all(written.read_text()))
    registry = plan.registry(1, {})
    index, problems = index_from_local(registry, documents, PolicyConfig())
    assert not problems
    served = index.port_policy("shop", "web-0", 8080)
    assert served is not None and served.server_name == "web-http"
    other = index.port_policy("shop", "web-0", 9090)
    assert other is not None and other.server_name == "deny"  # the Namespace's annotation


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: x}",
         "cluster file: document 2.kind: 'Secret': only HTTPRoute, GRPCRoute, Server, "
         "AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication and Namespace "
         "may follow"),
        ("apiVersion: policy.lacewing.io/v1beta1\nkind: Server\n"
         "metadata: {name: web-http, namespace: shop}\n"
         "spec: {podSelector: {}, port: 70000}",
         "cluster file: document 2: Server shop/web-http: spec.port: 70000 is not a port "
         "number (1-65535) or a port name"),
    ],
)  # fmt: skip
def test_a_bad_policy_document_is_one_line(tmp_path: Path, extra: str, line: str) -> None:
    from lacewing.local.spec import load_cluster_file

    (tmp_path / "cluster.yaml").write_text(
        "workloads: [{name: web, command: [web]}]\n---\n" + extra + "\n"
    )
    with pytest.raises(UsageError) as caught:
        load_cluster_file(tmp_path / "cluster.yaml")
    assert caught.value.message == line
