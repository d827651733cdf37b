"""Custom resources are validated and pruned against their CRD's openAPIV3Schema."""

from __future__ import annotations

import copy
import shutil
from typing import Any

import pytest
from lightkube import ApiError
from lightkube.generic_resource import create_namespaced_resource
from tests.support.kubeapi import KubeAPI
from tests.unit.testbed.test_lightkube_crud import CRD

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["port"],
            "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "proxyProtocol": {"type": "string", "enum": ["HTTP/1", "HTTP/2", "opaque"]},
                "podSelector": {
                    "type": "object",
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "weights": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}
Server = create_namespaced_resource("policy.lacewing.io", "v1beta1", "Server", "servers")


@pytest.fixture
def typed_crd(kube_api: KubeAPI) -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"][0]["schema"] = {"openAPIV3Schema": SCHEMA}
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Port", "type": "string", "jsonPath": ".spec.port"},
        {"name": "Protocol", "type": "string", "jsonPath": ".spec.proxyProtocol"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    kube_api.create(crd)


def _server(**spec: Any) -> Any:
    return Server.from_dict({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})


@pytest.mark.usefixtures("typed_crd")
def test_valid_resource_is_stored_with_unknown_fields_pruned(client: Any) -> None:
    created = client.create(
        _server(
            port="http",
            proxyProtocol="HTTP/2",
            podSelector={"matchLabels": {"app": "web"}},
            extra=1,
        )
    )
    assert created.spec == {
        "port": "http",
        "proxyProtocol": "HTTP/2",
        "podSelector": {"matchLabels": {"app": "web"}},
    }


@pytest.mark.usefixtures("typed_crd")
@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"proxyProtocol": "HTTP/2"}, "spec.port"),
        ({"port": 80, "proxyProtocol": "gopher"}, "spec.proxyProtocol"),
        ({"port": 1.5}, "spec.port"),
        ({"port": 80, "weights": [1, -1]}, "spec.weights[1]"),
        (
            {"port": 80, "podSelector": {"matchLabels": {"app": 3}}},
            "spec.podSelector.matchLabels.app",
        ),
    ],
)
def test_schema_violations_are_422(client: Any, spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiError) as invalid:
        client.create(_server(**spec))
    assert invalid.value.status.code == 422
    assert f"{field}: " in str(invalid.value.status.message)


@pytest.mark.usefixtures("typed_crd")
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
def test_kubectl_strict_validation_refuses_unknown_fields(kube_api: KubeAPI) -> None:
    manifest = (
        "apiVersion: policy.lacewing.io/v1beta1\nkind: Server\n"
        "metadata: {name: web, namespace: default}\nspec: {port: 80, bogus: true}\n"
    )
    refused = kube_api.kubectl("apply", "-f", "-", input=manifest)
    assert refused.returncode == 1
    assert 'unknown field "spec.bogus"' in refused.stderr
    relaxed = kube_api.kubectl("apply", "--validate=false", "-f", "-", input=manifest)
    assert relaxed.returncode == 0, relaxed.stderr
    obj = kube_api.get("policy.lacewing.io/v1beta1", "Server", "web", "default")
    assert obj is not None and obj["spec"] == {"port": 80}


@pytest.mark.usefixtures("typed_crd")
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
def test_kubectl_get_shows_printer_columns(client: Any, kube_api: KubeAPI) -> None:
    client.create(_server(port=8080, proxyProtocol="opaque"))
    shown = kube_api.kubectl("get", "servers.policy.lacewing.io", "-n", "default")
    assert shown.returncode == 0, shown.stderr
    header, row = shown.stdout.splitlines()
    assert header.split() == ["NAME", "PORT", "PROTOCOL", "AGE"]
    assert row.split()[:3] == ["web", "8080", "opaque"]
