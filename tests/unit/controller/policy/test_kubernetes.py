"""The Kubernetes source's folding: nothing before every kind is listed, list items get a kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lacewing.controller.policy import KubernetesSource
from lacewing.core.policy_index import PolicyConfig, PolicyIndex


@dataclass(frozen=True)
class Ev:
    type: str
    kind: str
    object: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        meta = self.object.get("metadata") or {}
        return (meta.get("namespace", ""), meta.get("name", ""))


POD = {
    "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {"containers": [{"ports": [{"containerPort": 8080}]}]},
}
# As a list item comes from the API: no apiVersion, no kind.
SERVER = {
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"podSelector": {}, "port": 8080},
}


def test_publishes_only_once_every_kind_has_been_listed() -> None:
    published: list[PolicyIndex] = []
    source = KubernetesSource({}, published.append, PolicyConfig())
    assert not source.apply(Ev("ADDED", "Pod", POD))
    assert not source.apply(Ev("ADDED", "Server", SERVER))
    for kind in KubernetesSource.KINDS[:-1]:
        assert not source.apply(Ev("SYNCED", kind, {}))
    assert source.apply(Ev("SYNCED", KubernetesSource.KINDS[-1], {}))
    policy = source.index().port_policy("shop", "web-0", 8080)
    assert policy is not None and (policy.server_kind, policy.server_name) == ("server", "web")
    assert source.apply(Ev("DELETED", "Server", SERVER))
    policy = source.index().port_policy("shop", "web-0", 8080)
    assert policy is not None and policy.server_kind == "default"
