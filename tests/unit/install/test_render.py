"""What `install` renders: valid for Kubernetes, one sidecar, certificates that chain."""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from lacewing.cli.commands.proxy_init import command as proxy_init_command
from lacewing.install import credentials, sidecar
from lacewing.install.output import dump_json, dump_yaml
from lacewing.install.render import render_control_plane, render_crds
from lacewing.install.values import Values, build_values, values_from_dict, values_from_yaml
from lacewing.proxy import config as proxy_config
from lacewing.tls.pem import parse_certificates, parse_private_key
from lacewing.tls.validate import check_dns_name, check_issued_by, check_key_matches

K8S_VERSIONS = ("1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34")


@cache
def _creds(namespace: str = "lacewing") -> credentials.Credentials:
    return credentials.generate(namespace, "cluster.local")


def _render(values: Values) -> list[dict[str, Any]]:
    return render_control_plane(values, _creds(values.namespace))


def _by(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def _kinds(docs: list[dict[str, Any]]) -> list[str]:
    return [d["kind"] for d in docs]


VARIANTS = {
    "default": Values(),
    "ha+limits": build_values(
        sets=["proxy.resources.cpuLimit=1", "namespace=mesh"],
        overrides={"ha": True},
    ),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_document_passes_strict_kubernetes_validation(variant: str, version: str) -> None:
    values = VARIANTS[variant]
    docs = render_crds(values) + _render(values)
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(map(str, exc.path))
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} at {path}: {exc.message}")


def test_the_control_plane_has_everything_the_issue_lists() -> None:
    docs = _render(Values())
    kinds = set(_kinds(docs))
    assert {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
            "Secret", "Service", "Deployment", "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration"} <= kinds  # fmt: skip
    assert docs[0]["kind"] == "Namespace" and docs[0]["metadata"]["name"] == "lacewing"
    for name in ("identity", "destination", "policy", "proxy-injector"):
        _by(docs, "ServiceAccount", f"lacewing-{name}")
    for name in ("identity", "destination", "policy", "proxy-injector"):
        deploy = _by(docs, "Deployment", f"lacewing-{name}")
        main = deploy["spec"]["template"]["spec"]["containers"][0]
        assert main["args"][:4] == ["-L", "lacewing", "controller", name]
        assert main["image"] == Values().image.ref
    # webhooks come after the Services and Deployments they call
    assert _kinds(docs)[-2:] == ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


def test_only_what_runs_is_rendered() -> None:
    """The heartbeat job did nothing: it is not rendered; every controller's command exists."""
    docs = _render(VARIANTS["ha+limits"])
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert not [n for n in names if "heartbeat" in n[1]], names
    assert "CronJob" not in _kinds(docs)
    from lacewing.cli.commands.controller import COMPONENTS as RUNNABLE

    for doc in docs:  # every Deployment runs a `lacewing controller` subcommand that exists
        if doc["kind"] == "Deployment":
            args = doc["spec"]["template"]["spec"]["containers"][0]["args"]
            assert args[2] == "controller" and args[3] in RUNNABLE, args


def test_pdbs_are_opt_in() -> None:
    assert "PodDisruptionBudget" not in _kinds(_render(Values()))
    docs = _render(VARIANTS["ha+limits"])
    assert _kinds(docs).count("PodDisruptionBudget") == 4
    assert _by(docs, "Deployment", "lacewing-destination")["spec"]["replicas"] == 3


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_control_plane_pods_use_the_one_sidecar_definition(variant: str) -> None:
    values = VARIANTS[variant]
    for doc in _render(values):
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        component = doc["metadata"]["labels"]["lacewing.io/control-plane-component"]
        assert pod["containers"][1] == sidecar.proxy_container(values, component)
        assert pod["initContainers"] == [sidecar.proxy_init_container(values, component)]
        names = {v["name"] for v in pod["volumes"]}
        assert {v["name"] for v in sidecar.proxy_volumes(values)} <= names
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert labels[sidecar.PROXY_VERSION_LABEL] == values.image.tag


def test_sidecar_is_what_the_task_says() -> None:
    values = build_values(overrides={"proxy": {"resources": {"cpuLimit": "500m"}}})
    proxy = sidecar.proxy_container(values)
    assert proxy["name"] == "lacewing-proxy"
    ports = {p["name"]: p["containerPort"] for p in proxy["ports"]}
    assert ports == {"lacewing-proxy": 4143, "lacewing-admin": 4191, "lacewing-tap": 4190}
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["LACEWING_PROXY_TAP_LISTEN_ADDR"] == "0.0.0.0:4190"
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "lacewing-admin"}
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/live", "port": "lacewing-admin"}
    security = proxy["securityContext"]
    assert security["runAsUser"] == 2102
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert proxy["resources"] == {"requests": {"cpu": "100m", "memory": "32Mi"},
                                  "limits": {"cpu": "500m"}}  # fmt: skip
    init = sidecar.proxy_init_container(values)
    assert init["args"][0] == "proxy-init"
    assert sorted(init["securityContext"]["capabilities"]["add"]) == ["NET_ADMIN", "NET_RAW"]


def test_proxy_env_is_accepted_by_the_proxy() -> None:
    proxy = sidecar.proxy_container(Values())
    env = {e["name"]: e["value"] for e in proxy["env"] if "value" in e}
    env |= {"LACEWING_PROXY_POD_NAME": "web-0", "LACEWING_PROXY_POD_NAMESPACE": "shop"}  # fieldRef
    config = proxy_config.load(env)  # raises on an unknown or malformed LACEWING_PROXY_* var
    assert config.inbound_listen_addr.port == 4143
    assert config.admin_listen_addr.port == 4191
    assert 3306 in config.opaque_ports


def test_init_args_are_accepted_by_proxy_init() -> None:
    values = build_values(
        sets=["proxyInit.ignoreOutboundPorts=25", "proxyInit.skipSubnets=10.0.0.0/8"]
    )
    args = sidecar.proxy_init_container(values)["args"][1:]
    ctx = proxy_init_command.make_context("proxy-init", [*args, "--dry-run"])
    assert ctx.params["proxy_uid"] == 2102
    assert ctx.params["inbound_ports_to_ignore"] == "4190,4191"
    with pytest.raises(click.UsageError):  # the parse above could fail: prove it can
        proxy_init_command.make_context("proxy-init", ["--proxy-uid", "x"])


def test_config_map_holds_the_full_values_and_version() -> None:
    values = VARIANTS["ha+limits"]
    config = _by(_render(values), "ConfigMap", "lacewing-config")
    stored = values_from_dict(values_from_yaml(config["data"]["values"], "stored"))
    assert stored.ha and stored.namespace == "mesh"
    assert stored.identity.trust_anchors_pem == _creds("mesh").trust_anchors_pem
    assert config["data"]["version"]
    assert "PRIVATE KEY" not in config["data"]["values"]


def test_issuer_secret_and_trust_roots_chain() -> None:
    docs = _render(Values())
    secret = _by(docs, "Secret", "lacewing-identity-issuer")
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    roots = _by(docs, "ConfigMap", "lacewing-identity-trust-roots")["data"]["ca-bundle.crt"]
    anchors = parse_certificates(roots.encode(), "roots")
    issuer = parse_certificates(data["tls.crt"], "crt")[0]
    check_issued_by(issuer, anchors)
    check_key_matches(issuer, parse_private_key(data["tls.key"], "key"))
    assert parse_certificates(data["ca.crt"], "ca") == anchors


@pytest.mark.parametrize(
    ("kind", "service"),
    [
        ("MutatingWebhookConfiguration", "lacewing-proxy-injector"),
        ("ValidatingWebhookConfiguration", "lacewing-policy-validator"),
    ],
)
def test_webhook_ca_bundle_verifies_its_serving_cert(kind: str, service: str) -> None:
    docs = _render(Values())
    config = next(d for d in docs if d["kind"] == kind)
    hook = config["webhooks"][0]
    assert hook["clientConfig"]["service"]["name"] == service
    _by(docs, "Service", service)
    bundle = parse_certificates(base64.b64decode(hook["clientConfig"]["caBundle"]), "caBundle")
    secret = _by(docs, "Secret", f"{service}-k8s-tls")
    cert = parse_certificates(base64.b64decode(secret["data"]["tls.crt"]), "crt")[0]
    check_issued_by(cert, bundle)
    check_dns_name(cert, f"{service}.lacewing.svc")
    assert isinstance(cert, x509.Certificate)


def test_the_policy_controller_runs_as_install_configures_it() -> None:
    """Its flags parse with the real command; its certificate comes from identity (CSR +
    projected token), so the issuer's key is mounted in the identity pod only."""
    from lacewing.cli.commands.controller_policy import policy_command

    values = build_values(sets=["defaultInboundPolicy=deny", "clusterNetworks=10.42.0.0/16"])
    docs = _render(values)
    deploy = _by(docs, "Deployment", "lacewing-policy")
    pod = deploy["spec"]["template"]["spec"]
    main = pod["containers"][0]
    ctx = policy_command.make_context("policy", main["args"][4:])
    assert ctx.params["default_policy"] == "deny"
    assert ctx.params["cluster_networks"] == "10.42.0.0/16"
    assert ctx.params["identity_addr"] == "lacewing-identity.lacewing.svc.cluster.local:8080"
    assert ctx.params["issuer_dir"] is None
    assert ctx.params["admission_addr"] == "0.0.0.0:9443"
    assert pod["serviceAccountName"] == "lacewing-policy"
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] != "lacewing-identity":
            volumes = doc["spec"]["template"]["spec"]["volumes"]
            assert not [v for v in volumes if "secret" in v and "issuer" in str(v)], doc
    ports = {p["containerPort"] for p in main["ports"]}
    assert ports == {8090, 9443, 9990}  # 9990: the admin port viz scrapes
    svc = _by(docs, "Service", "lacewing-policy")
    assert svc["spec"]["ports"][0]["port"] == 8090
    # its own proxy skips the ports it serves itself, and reaches it on localhost
    init = pod["initContainers"][0]["args"]
    assert "8090,9443" in init[init.index("--inbound-ports-to-ignore") + 1]
    proxy_env = {e["name"]: e.get("value") for e in pod["containers"][1]["env"]}
    assert proxy_env["LACEWING_PROXY_POLICY_ADDR"] == "localhost:8090"
    assert proxy_env["LACEWING_PROXY_DEFAULT_INBOUND_POLICY"] == "deny"
    role = _by(docs, "ClusterRole", "lacewing-lacewing-policy")
    watched = {r for rule in role["rules"] for r in rule["resources"]}
    assert {"servers", "authorizationpolicies", "meshtlsauthentications",
            "networkauthentications", "pods", "namespaces"} <= watched  # fmt: skip
    validating = _by(
        docs, "ValidatingWebhookConfiguration", "lacewing-lacewing-policy-validator-webhook-config"
    )
    rule = validating["webhooks"][0]["rules"][0]
    assert rule["apiGroups"] == ["policy.lacewing.io"] and "servers" in rule["resources"]


def test_meshed_pods_get_the_policy_settings() -> None:
    proxy = sidecar.proxy_container(build_values(sets=["defaultInboundPolicy=audit"]))
    env = {e["name"]: e for e in proxy["env"]}
    assert env["LACEWING_PROXY_POLICY_ADDR"]["value"] == (
        "lacewing-policy.lacewing.svc.cluster.local:8090"
    )
    assert env["LACEWING_PROXY_POD_NAME"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.name"}
    }
    assert env["LACEWING_PROXY_POD_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    assert env["LACEWING_PROXY_DEFAULT_INBOUND_POLICY"]["value"] == "audit"
    assert env["LACEWING_PROXY_CLUSTER_NETWORKS"]["value"] == Values().cluster_networks


@pytest.mark.parametrize("name", ["cluster-authenticated", "audit"])
def test_every_default_policy_is_a_value_and_a_server_access_policy(name: str) -> None:
    assert build_values(sets=[f"defaultInboundPolicy={name}"]).default_inbound_policy == name
    (server,) = [c for c in render_crds(Values()) if c["spec"]["names"]["kind"] == "Server"]
    schema = server["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert name in schema["properties"]["spec"]["properties"]["accessPolicy"]["enum"]


def test_external_issuer_leaves_the_issuer_secret_to_cert_manager() -> None:
    values = build_values(overrides={"identity": {"externalIssuer": True}})
    creds = credentials.generate("lacewing", "cluster.local", external_issuer=True)
    docs = render_control_plane(values, creds)
    assert not [d for d in docs if d["metadata"]["name"] == "lacewing-identity-issuer"]
    identity = _by(docs, "Deployment", "lacewing-identity")
    volumes = identity["spec"]["template"]["spec"]["volumes"]
    secret = {"secretName": "lacewing-identity-issuer"}
    issuer_volume = {"name": "identity-issuer", "secret": secret}
    assert issuer_volume in volumes


def test_yaml_and_json_output_round_trip() -> None:
    docs = render_crds(Values()) + _render(Values())
    text = dump_yaml(docs)
    assert list(yaml.safe_load_all(text)) == docs
    assert "ca-bundle.crt: |" in text  # PEM stays readable
    listed = yaml.safe_load(dump_json(docs))
    assert listed["kind"] == "List" and listed["items"] == docs


def test_yaml_quotes_strings_that_look_like_other_types() -> None:
    values = build_values(sets=["image.tag=true"])
    text = dump_yaml(_render(values)[:1])
    assert "app.kubernetes.io/version: 'true'" in text
