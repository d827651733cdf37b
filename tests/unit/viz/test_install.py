"""`viz install`'s manifests: valid for Kubernetes, Pi-sized, and the scrape job for proxies."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from lacewing.errors import ConfigError
from lacewing.viz.install import VizValues, parse_sets, render_viz
from lacewing.viz.scrapeconfig import proxy_relabel_configs


def _by(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize("version", ["1.28", "1.34"])
@pytest.mark.parametrize("sets", [(), ("prometheusUrl=http://prom.monitoring:9090",)])
def test_valid_for_kubernetes(version: str, sets: tuple[str, ...]) -> None:
    for doc in render_viz(parse_sets(sets)):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")


def test_prometheus_deployment_and_its_scrape_job() -> None:
    docs = render_viz(VizValues())
    assert [d["kind"] for d in docs][:8] == [
        "Namespace", "ConfigMap", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
        "ConfigMap", "Service", "Deployment",
    ]  # fmt: skip
    assert docs[0]["metadata"]["name"] == "lacewing-viz"
    deploy = _by(docs, "Deployment", "prometheus")
    pod = deploy["spec"]["template"]
    assert pod["metadata"]["annotations"] == {"lacewing.io/inject": "disabled"}
    (container,) = pod["spec"]["containers"]
    assert container["image"].startswith("prom/prometheus:v2.")
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "384Mi"}
    assert container["securityContext"]["runAsNonRoot"] is True
    config = yaml.safe_load(_by(docs, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "lacewing-proxy"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    assert job["relabel_configs"] == proxy_relabel_configs("lacewing")
    assert job["relabel_configs"][0]["regex"] == "^lacewing-proxy;lacewing-admin;lacewing$"
    (controllers,) = [j for j in config["scrape_configs"] if j["job_name"] == "lacewing-controller"]
    assert controllers["kubernetes_sd_configs"][0]["namespaces"] == {"names": ["lacewing"]}
    rules = _by(docs, "ClusterRole", "lacewing-viz-prometheus")["rules"]
    assert rules == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]


def test_an_existing_prometheus_renders_none_of_ours() -> None:
    docs = render_viz(parse_sets(["prometheusUrl=http://prom.monitoring:9090"]))
    assert [d["kind"] for d in docs][:2] == ["Namespace", "ConfigMap"]
    assert not [d for d in docs if "prometheus" in d["metadata"]["name"]]
    values = yaml.safe_load(docs[1]["data"]["values"])
    assert values["prometheusUrl"] == "http://prom.monitoring:9090"
    (web,) = _by(docs, "Deployment", "web")["spec"]["template"]["spec"]["containers"]
    assert web["args"][-2:] == ["--prometheus-url", "http://prom.monitoring:9090"]


def test_tap_component_has_the_tap_identity_and_only_the_access_it_needs() -> None:
    docs = render_viz(parse_sets(["identityTrustDomain=example.org"]))
    tap = _by(docs, "Deployment", "tap")
    pod = tap["spec"]["template"]["spec"]
    # service account `tap` in lacewing-viz: identity names it tap.lacewing-viz.serviceaccount...
    assert pod["serviceAccountName"] == "tap" and tap["metadata"]["namespace"] == "lacewing-viz"
    assert tap["spec"]["template"]["metadata"]["annotations"] == {"lacewing.io/inject": "disabled"}
    (container,) = pod["containers"]
    args = container["args"]
    assert args[:2] == ["viz", "tap-relay"]
    assert args[args.index("--identity-addr") + 1] == (
        "lacewing-identity.lacewing.svc.cluster.local:8080"
    )
    assert args[args.index("--trust-domain") + 1] == "example.org"
    (token,) = [v for v in pod["volumes"] if v["name"] == "lacewing-identity-token"]
    source = token["projected"]["sources"][0]["serviceAccountToken"]
    assert source["audience"] == "identity.lacewing.io"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert _by(docs, "ClusterRole", "lacewing-viz-tap")["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
    ]
    role = _by(docs, "Role", "lacewing-viz-tap-trust-roots")
    assert role["metadata"]["namespace"] == "lacewing"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                              "resourceNames": ["lacewing-identity-trust-roots"]}]  # fmt: skip
    binding = _by(docs, "RoleBinding", "lacewing-viz-tap-trust-roots")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tap",
                                    "namespace": "lacewing-viz"}]  # fmt: skip
    assert _by(docs, "Service", "tap")["spec"]["ports"][0]["port"] == 8089
    # a fresh random token per render, mounted for the relay's --token-file
    tokens = {_by(render_viz(VizValues()), "Secret", "tap-token")["data"]["token"] for _ in "ab"}
    assert len(tokens) == 2
    assert args[args.index("--token-file") + 1] == "/var/run/lacewing-tap-token/token"
    (secret_volume,) = [v for v in pod["volumes"] if v["name"] == "token"]
    assert secret_volume["secret"]["secretName"] == "tap-token"


def test_web_component_serves_the_dashboard_from_the_viz_prometheus() -> None:
    docs = render_viz(VizValues())
    (container,) = _by(docs, "Deployment", "web")["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [
        "viz", "dashboard", "--here", "--no-browser", "--address", "0.0.0.0", "--port", "8084",
        "--prometheus-url", "http://prometheus.lacewing-viz.svc.cluster.local:9090",
    ]  # fmt: skip
    rules = _by(docs, "ClusterRole", "lacewing-viz-web")["rules"]
    assert all(set(r["verbs"]) <= {"get", "list"} for r in rules)
    # its live tap goes the way `viz tap` does: the tap token, then the tap pod's proxy path
    role = _by(docs, "Role", "lacewing-viz-web-tap")
    assert role["metadata"]["namespace"] == "lacewing-viz"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
         "resourceNames": ["tap-token"]},
        {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]},
    ]  # fmt: skip
    binding = _by(docs, "RoleBinding", "lacewing-viz-web-tap")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "web",
                                    "namespace": "lacewing-viz"}]  # fmt: skip


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nope=1", "--set nope: unknown key"),
        ("prometheusUrl", "--set 'prometheusUrl': expected KEY=VALUE"),
        ("prometheusUrl=ftp://x", "--set prometheusUrl=ftp://x: not an http(s) URL"),
        ("prometheus.retention=soon", "--set prometheus.retention=soon: not a Prometheus duration"),
        ("prometheus.resources.memory.limit=lots", "not a resource quantity"),
    ],
)
def test_bad_values(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_sets([item])
