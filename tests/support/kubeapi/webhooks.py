"""Mutating admission of Pods through the cluster's MutatingWebhookConfigurations.

When a Pod is created (over HTTP, in-process, or by the kubelet helper's ReplicaSets), every
MutatingWebhookConfiguration is consulted in name order, and within it every webhook whose
rules cover CREATE of v1 pods and whose namespaceSelector (against the namespace's labels)
and objectSelector (against the Pod's labels) match. Each is sent an AdmissionReview v1 over
HTTPS, verified against the webhook's `caBundle` with the service's DNS name
(`<service>.<namespace>.svc`) as the expected host name, as the real API server does. A
`service` reference is reached through the URL the test registered for it
(`KubeAPI.route_webhook`); a `url` is used as is. A returned base64 JSONPatch is applied to
the Pod before the next webhook sees it. A refusal (`allowed: false`) fails the create with
the webhook's message; a call that fails (refused connection, timeout, bad TLS, bad reply)
fails the create unless the webhook's `failurePolicy` is `Ignore`.
"""

from __future__ import annotations

import base64
import json
import ssl
import uuid
from typing import Any

import aiohttp

from tests.support.kubeapi.cluster import Cluster
from tests.support.kubeapi.errors import ApiError
from tests.support.kubeapi.patch import json_patch
from tests.support.kubeapi.selectors import match_selector_object

CONFIG_KIND = ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration")


class _CallFailed(Exception):
    """The webhook could not be called or answered nonsense."""


def has_webhooks(cluster: Cluster) -> bool:
    rt = cluster.registry.by_kind(*CONFIG_KIND)
    return rt is not None and bool(cluster.store.list(rt)[0])


def _covers(rule: dict[str, Any]) -> bool:
    def has(field: str, value: str) -> bool:
        return any(v in (value, "*") for v in rule.get(field) or [])

    resources = rule.get("resources") or []
    return (
        has("operations", "CREATE")
        and has("apiGroups", "")
        and has("apiVersions", "v1")
        and any(r in ("pods", "*", "*/*") for r in resources)
    )


def _applies(hook: dict[str, Any], pod: dict[str, Any], ns_labels: dict[str, str]) -> bool:
    return (
        any(_covers(rule) for rule in hook.get("rules") or [])
        and match_selector_object(hook.get("namespaceSelector"), ns_labels)
        and match_selector_object(hook.get("objectSelector"), pod["metadata"].get("labels") or {})
    )


def _target(cluster: Cluster, client_config: dict[str, Any]) -> tuple[str, str | None]:
    """The URL to call and the TLS host name to verify."""
    if client_config.get("url"):
        return client_config["url"], None
    svc = client_config.get("service") or {}
    key = (svc.get("namespace", ""), svc.get("name", ""), int(svc.get("port", 443)))
    base = cluster.webhook_urls.get(key)
    if base is None:
        raise _CallFailed(
            f"no endpoints for service {key[0]}/{key[1]}:{key[2]} "
            "(route it with KubeAPI.route_webhook)"
        )
    return base + (svc.get("path") or "/"), f"{key[1]}.{key[0]}.svc"


async def _call(cluster: Cluster, hook: dict[str, Any], review: dict[str, Any]) -> dict[str, Any]:
    client_config = hook.get("clientConfig") or {}
    url, host = _target(cluster, client_config)
    ctx = ssl.create_default_context()
    bundle = client_config.get("caBundle")
    if bundle:
        ctx = ssl.create_default_context(cadata=base64.b64decode(bundle).decode())
    timeout = aiohttp.ClientTimeout(total=float(hook.get("timeoutSeconds", 10)))
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json=review, ssl=ctx, server_hostname=host) as resp,
        ):
            if resp.status != 200:
                raise _CallFailed(f"the webhook answered HTTP {resp.status}")
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError, ssl.SSLError) as exc:
        raise _CallFailed(str(exc) or type(exc).__name__) from None
    response = body.get("response") if isinstance(body, dict) else None
    if not isinstance(response, dict) or response.get("uid") != review["request"]["uid"]:
        raise _CallFailed("the webhook's AdmissionReview has no response for this request")
    return response


def _review(pod: dict[str, Any], dry_run: bool, username: str) -> dict[str, Any]:
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    gvr = {"group": "", "version": "v1", "resource": "pods"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": pod["metadata"].get("name", ""),
            "namespace": pod["metadata"].get("namespace", ""),
            "operation": "CREATE",
            "userInfo": {"username": username},
            "object": pod,
            "oldObject": None,
            "dryRun": dry_run,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


async def admit_pod(
    cluster: Cluster, pod: dict[str, Any], dry_run: bool = False, username: str = "admin"
) -> dict[str, Any]:
    """The Pod as the mutating webhooks leave it (see the module docstring)."""
    rt = cluster.registry.by_kind(*CONFIG_KIND)
    ns_type = cluster.registry.by_kind("v1", "Namespace")
    if rt is None or ns_type is None:
        return pod
    configs, _ = cluster.store.list(rt)
    namespace = pod["metadata"].get("namespace") or "default"
    ns_objects, _ = cluster.store.list(ns_type)
    ns_labels = next(
        (
            n["metadata"].get("labels") or {}
            for n in ns_objects
            if n["metadata"]["name"] == namespace
        ),
        {},
    )
    for config in configs:
        for hook in config.get("webhooks") or []:
            if not _applies(hook, pod, ns_labels):
                continue
            try:
                response = await _call(cluster, hook, _review(pod, dry_run, username))
            except (TimeoutError, _CallFailed) as exc:
                if hook.get("failurePolicy", "Fail") == "Ignore":
                    continue
                raise ApiError(
                    500,
                    "InternalError",
                    f'Internal error occurred: failed calling webhook "{hook.get("name")}": {exc}',
                ) from None
            if not response.get("allowed"):
                status = response.get("status") or {}
                raise ApiError(
                    int(status.get("code") or 400),
                    "BadRequest",
                    f'admission webhook "{hook.get("name")}" denied the request: '
                    f"{status.get('message', '')}",
                )
            if response.get("patch"):
                if response.get("patchType", "JSONPatch") != "JSONPatch":
                    raise ApiError(500, "InternalError", "webhook patchType must be JSONPatch")
                ops = json.loads(base64.b64decode(response["patch"]))
                pod = json_patch(pod, ops)
    return pod
