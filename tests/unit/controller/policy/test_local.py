"""The local source: registry.json pods + a policy YAML file, polled; bad writes keep the last."""

from __future__ import annotations

import json
from pathlib import Path

from lacewing.controller.policy import LocalSource
from lacewing.core.policy import evaluate
from lacewing.core.policy_index import PolicyConfig, PolicyIndex

REGISTRY = {
    "cluster": "t",
    "revision": 1,
    "services": [
        {
            "name": "web",
            "namespace": "shop",
            "clusterIP": "10.43.0.10",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "opaque": False}],
            "selector": {"app": "web"},
        }
    ],
    "pods": [
        {
            "name": "web-0",
            "namespace": "shop",
            "ip": "10.42.0.10",
            "labels": {"app": "web"},
            "serviceAccount": "web",
            "ready": True,
            "meshed": True,
            "workload": {"kind": "Deployment", "name": "web"},
        }
    ],
}
POLICY = """
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  annotations: {config.lacewing.io/default-inbound-policy: deny}
---
apiVersion: policy.lacewing.io/v1beta1
kind: Server
metadata: {name: web-http, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  port: http
---
apiVersion: policy.lacewing.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: bot-in, namespace: shop}
spec:
  targetRef: {group: policy.lacewing.io, kind: Server, name: web-http}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: bot}]
"""
BOT = "bot.shop.serviceaccount.identity.lacewing.cluster.local"


def test_registry_and_policy_file_compile_and_follow_changes(tmp_path: Path) -> None:
    registry, policy = tmp_path / "registry.json", tmp_path / "policy.yaml"
    registry.write_text(json.dumps(REGISTRY))
    published: list[PolicyIndex] = []
    source = LocalSource(registry, policy, published.append, PolicyConfig())
    assert source.poll()  # policy file missing: the registry alone, default policies
    first = published[-1].port_policy("shop", "web-0", 8080)
    assert first is not None and first.server_name == "all-unauthenticated"
    assert not source.poll()  # nothing changed

    policy.write_text(POLICY)
    assert source.poll()
    compiled = published[-1].port_policy("shop", "web-0", 8080)
    assert compiled is not None and compiled.server_name == "web-http"  # port named by the Service
    assert evaluate(compiled, BOT, "10.42.0.3").allowed
    assert not evaluate(compiled, None, "10.42.0.3").allowed
    other = published[-1].port_policy("shop", "web-0", 9999)
    assert other is not None and other.server_name == "deny"  # the namespace annotation

    policy.write_text("kind: [unclosed")  # a half-written file: keep the last good content
    assert not source.poll()
    assert len(published) == 2

    policy.write_text(POLICY.replace("port: http", "port: 70000"))  # invalid: left out
    assert source.poll()
    left = published[-1].port_policy("shop", "web-0", 8080)
    assert left is not None and left.server_kind == "default"

    policy.unlink()
    assert source.poll()
    gone = published[-1].port_policy("shop", "web-0", 8080)
    assert gone is not None and gone.server_name == "all-unauthenticated"
