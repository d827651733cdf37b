"""An installed control plane on the Kubernetes API test bed, with the real injector serving.

`control_plane` applies what `lacewing install` renders (namespace, ConfigMaps, the webhook's
serving-certificate Secret, the MutatingWebhookConfiguration with its caBundle...) through the
Kubernetes adapter, writes the Secret's `tls.crt`/`tls.key` where the Deployment would mount
them, and starts `InjectorServer` on this test's loop on a loopback port; the test bed is told
that the `lacewing-proxy-injector` Service lives there. The test bed then calls it over HTTPS,
checking the certificate against the caBundle for `lacewing-proxy-injector.lacewing.svc`, on
every Pod create, as an API server would.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.support.kubeapi import KubeAPI

from lacewing.controller.injector.admission import Admission
from lacewing.controller.injector.server import InjectorServer, TlsFiles
from lacewing.install.credentials import Credentials, generate
from lacewing.install.render import render_control_plane
from lacewing.install.values import build_values
from lacewing.k8s.cluster import Cluster

Obj = dict[str, Any]


@dataclass
class ControlPlane:
    api: KubeAPI
    cluster: Cluster
    server: InjectorServer
    creds: Credentials
    tls_dir: Path

    async def create(self, obj: Obj) -> Obj:
        """Create through the API over HTTPS (off the loop: the webhook runs on it)."""
        return await asyncio.to_thread(self.cluster.create, obj)

    async def run(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.to_thread(fn)


def namespace(name: str, annotations: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "annotations": annotations or {}},
    }


def pod(
    ns: str,
    name: str = "web",
    annotations: dict[str, str] | None = None,
    host_network: bool = False,
) -> Obj:
    spec: Obj = {"containers": [{"name": "web", "image": "nginx:1.27"}]}
    if host_network:
        spec["hostNetwork"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
        "spec": spec,
    }


def write_tls(cluster: Cluster, directory: Path) -> None:
    secret = cluster.get("v1", "Secret", "lacewing-proxy-injector-k8s-tls", "lacewing")
    assert secret is not None
    directory.mkdir(parents=True, exist_ok=True)
    for key in ("tls.crt", "tls.key"):
        (directory / key).write_bytes(base64.b64decode(secret["data"][key]))


@pytest.fixture
async def control_plane(kube_api: KubeAPI, tmp_path: Path) -> AsyncIterator[ControlPlane]:
    values = build_values()
    creds = generate(values.namespace, values.identity.trust_domain)
    cluster = Cluster.connect(str(kube_api.kubeconfig))
    for doc in render_control_plane(values, creds):
        cluster.apply(doc)
    tls_dir = tmp_path / "tls"
    write_tls(cluster, tls_dir)
    lookup = Cluster.connect(str(kube_api.kubeconfig))
    server = InjectorServer(Admission(lookup, "lacewing"), TlsFiles(tls_dir), "127.0.0.1", 0)
    await server.start()
    base = f"https://127.0.0.1:{server.bound_port}"
    kube_api.route_webhook("lacewing", "lacewing-proxy-injector", 443, base)
    try:
        yield ControlPlane(kube_api, cluster, server, creds, tls_dir)
    finally:
        await server.stop()
        cluster.close()
        lookup.close()
