"""Mutating webhooks: Pods created over HTTP, in-process and by the kubelet get patched."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from lightkube import ApiError
from lightkube.resources.core_v1 import Pod
from tests.support.kubeapi import KubeAPI
from tests.support.kubeapi.certs import make_certs
from tests.unit.testbed.test_lightkube_patch import DEPLOY

SIDECAR = {"name": "lacewing-proxy", "image": "lacewing/proxy:dev"}


def _webhook_config(ca_pem: bytes, policy: str = "Fail", port: int = 443) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "lacewing-injector"},
        "webhooks": [
            {
                "name": "inject.lacewing.io",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": policy,
                "clientConfig": {
                    "service": {
                        "namespace": "lacewing",
                        "name": "injector",
                        "path": "/inject",
                        "port": port,
                    },
                    "caBundle": base64.b64encode(ca_pem).decode(),
                },
                "namespaceSelector": {"matchLabels": {"lacewing.io/inject": "enabled"}},
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                    }
                ],
            }
        ],
    }


@pytest.fixture
async def injector(kube_api: KubeAPI) -> AsyncIterator[tuple[bytes, list[dict[str, Any]]]]:
    """An HTTPS webhook on this test's loop that adds a sidecar; yields (CA, reviews seen)."""
    certs = make_certs(dns_names=("injector.lacewing.svc",))
    seen: list[dict[str, Any]] = []

    async def inject(request: web.Request) -> web.Response:
        review = await request.json()
        seen.append(review["request"])
        ops = [{"op": "add", "path": "/spec/containers/-", "value": SIDECAR}]
        patch = base64.b64encode(json.dumps(ops).encode()).decode()
        response = {
            "uid": review["request"]["uid"],
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": patch,
        }
        return web.json_response({**review, "response": response})

    app = web.Application()
    app.router.add_post("/inject", inject)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certs.server_context())
    await site.start()
    port = runner.addresses[0][1]
    kube_api.route_webhook("lacewing", "injector", 443, f"https://127.0.0.1:{port}")
    for ns, labels in (("lacewing", {}), ("shop", {"lacewing.io/inject": "enabled"})):
        kube_api.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
        )
    try:
        yield certs.ca_pem, seen
    finally:
        await runner.cleanup()


def _pod(ns: str, name: str = "app") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }


def _containers(pod: dict[str, Any]) -> list[str]:
    return [c["name"] for c in pod["spec"]["containers"]]


async def test_pods_in_selected_namespaces_are_mutated(
    aclient: Any, kube_api: KubeAPI, injector: tuple[bytes, list[dict[str, Any]]]
) -> None:
    ca, seen = injector
    kube_api.create(_webhook_config(ca))
    created = await aclient.create(Pod.from_dict(_pod("shop")))
    assert [c.name for c in created.spec.containers] == ["app", "lacewing-proxy"]
    assert seen[0]["operation"] == "CREATE" and seen[0]["namespace"] == "shop"
    plain = await aclient.create(Pod.from_dict(_pod("default")))
    assert [c.name for c in plain.spec.containers] == ["app"]
    assert len(seen) == 1

    loop = asyncio.get_running_loop()
    in_process = await loop.run_in_executor(None, kube_api.create, _pod("shop", "direct"))
    assert _containers(in_process) == ["app", "lacewing-proxy"]
    kube_api.create({**DEPLOY, "metadata": {"name": "web", "namespace": "shop"}})
    await loop.run_in_executor(None, kube_api.kubelet.sync)
    (pod,) = [
        p for p in kube_api.list("v1", "Pod", "shop") if p["metadata"]["name"].startswith("web-")
    ]
    assert _containers(pod) == ["web", "side", "lacewing-proxy"]


async def test_failure_policy(
    aclient: Any, kube_api: KubeAPI, injector: tuple[bytes, list[dict[str, Any]]]
) -> None:
    ca, _ = injector
    kube_api.create(_webhook_config(ca, policy="Ignore", port=9999))  # no route: call fails
    created = await aclient.create(Pod.from_dict(_pod("shop")))
    assert [c.name for c in created.spec.containers] == ["app"]
    kube_api.delete(
        "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "lacewing-injector"
    )
    kube_api.create(_webhook_config(ca, policy="Fail", port=9999))
    with pytest.raises(ApiError) as failed:
        await aclient.create(Pod.from_dict(_pod("shop", "second")))
    assert failed.value.status.code == 500
    assert 'failed calling webhook "inject.lacewing.io"' in str(failed.value.status.message)


async def test_wrong_ca_fails_the_call(
    aclient: Any, kube_api: KubeAPI, injector: tuple[bytes, list[dict[str, Any]]]
) -> None:
    kube_api.create(_webhook_config(make_certs().ca_pem))
    with pytest.raises(ApiError) as failed:
        await aclient.create(Pod.from_dict(_pod("shop")))
    assert failed.value.status.code == 500
    assert "certificate verify failed" in str(failed.value.status.message)
