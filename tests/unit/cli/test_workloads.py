"""deploy/NAME and pod/NAME name the pods `authz` and `diagnostics proxy-metrics` read."""

from __future__ import annotations

from typing import Any

import pytest

from lacewing.cli.commands.workloads import parse_workload, workload_pods
from lacewing.errors import UsageError


class Listing:
    """A cluster that answers list/get from fixed objects (the API test bed covers the real one)."""

    def __init__(self, pods: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]):
        self.pods, self.deployments = pods, deployments

    def list(self, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
        assert (api_version, kind) == ("v1", "Pod")
        return self.pods

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> Any:
        assert (api_version, kind) == ("apps/v1", "Deployment")
        return self.deployments.get(name)


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def test_kubectl_names_of_the_two_kinds_are_accepted() -> None:
    assert parse_workload("deploy/web", "x") == ("Deployment", "web")
    assert parse_workload("Deployments/web", "x") == ("Deployment", "web")
    assert parse_workload("po/web-1", "x") == ("Pod", "web-1")


@pytest.mark.parametrize("bad", ["web", "svc/web", "deploy/", "/web"])
def test_other_forms_say_what_to_type(bad: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_workload(bad, "lacewing authz -n shop deploy/web")
    assert "is not deploy/NAME or pod/NAME" in err.value.message
    assert err.value.hint == "for example: lacewing authz -n shop deploy/web"


def test_a_deployment_is_the_pods_its_selector_matches_sorted_by_name() -> None:
    cluster = Listing(
        [pod("web-b", app="web"), pod("api-a", app="api"), pod("web-a", app="web", v="2")],
        {"web": {"spec": {"selector": {"matchLabels": {"app": "web"}}}}},
    )
    names = [p["metadata"]["name"] for p in workload_pods(cluster, "Deployment", "web", "shop")]
    assert names == ["web-a", "web-b"]
    with pytest.raises(UsageError, match="deployment shop/gone not found"):
        workload_pods(cluster, "Deployment", "gone", "shop")
    with pytest.raises(UsageError, match="pod shop/web-c not found"):
        workload_pods(cluster, "Pod", "web-c", "shop")


def test_a_deployment_without_pods_says_so() -> None:
    cluster = Listing(
        [pod("api-a", app="api")], {"web": {"spec": {"selector": {"matchLabels": {"app": "web"}}}}}
    )
    with pytest.raises(UsageError, match="has no pods yet"):
        workload_pods(cluster, "Deployment", "web", "shop")
