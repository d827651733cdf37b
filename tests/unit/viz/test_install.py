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
    assert [d["kind"] for d in docs] == [
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
    assert [d["kind"] for d in docs] == ["Namespace", "ConfigMap"]
    values = yaml.safe_load(docs[1]["data"]["values"])
    assert values["prometheusUrl"] == "http://prom.monitoring:9090"


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
