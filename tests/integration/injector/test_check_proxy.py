"""`check --proxy` categories against the test bed: meshed pods pass, each fault is named."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from tests.integration.cli.policy_controller import ThreadedPolicy
from tests.integration.injector.conftest import ControlPlane, namespace

from lacewing import __version__
from lacewing.cli.main import main
from lacewing.healthcheck.checks.dataplane import data_plane_categories
from lacewing.healthcheck.facts import CheckOptions, Facts
from lacewing.healthcheck.model import Report, Status
from lacewing.healthcheck.runner import run_checks
from lacewing.install import sidecar
from lacewing.install.credentials import generate
from lacewing.install.render import render_crds
from lacewing.install.values import build_values
from lacewing.k8s.cluster import Cluster
from lacewing.proxy.metrics.proxy import ProxyMetrics

ENABLED = {"lacewing.io/inject": "enabled"}


def _deployment(name: str, port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": f"{name}:1",
                            "ports": [{"name": "main", "containerPort": port}],
                        }
                    ]
                },
            },
        },
    }


def _service(name: str, port: int, opaque: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "annotations": {"config.lacewing.io/opaque-ports": opaque},
        },
        "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": "main"}]},
    }


async def _meshed(cp: ControlPlane, ready: bool = True) -> None:
    await cp.create(namespace("shop", ENABLED))
    await cp.run(lambda: cp.cluster.apply(_deployment("web")))
    await cp.run(lambda: cp.cluster.apply(_deployment("db", 3306)))
    await cp.run(cp.api.kubelet.sync)
    if ready:
        await cp.run(lambda: cp.api.kubelet.mark_ready("shop"))


async def _check(
    cp: ControlPlane, ns: str | None = "shop", cli: str = __version__, latest: str = __version__
) -> dict[str, tuple[Status, str]]:
    options = CheckOptions(namespace="lacewing", kubeconfig=str(cp.api.kubeconfig), cli_version=cli)
    facts = Facts(options, connect=Cluster.connect, fetch_latest=lambda url: latest)
    report: Report = await cp.run(lambda: run_checks(data_plane_categories(ns), facts, wait=0))
    return {r.description: (r.status, r.error) for c in report.categories for r in c.results}


class PodMetrics:
    """Each shop pod's proxy /metrics (rendered by the proxy's own ProxyMetrics), served on
    loopback and routed by the test bed's `pods/<pod>:4191/proxy/metrics`."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.metrics: dict[str, ProxyMetrics] = {}
        self.runner: web.AppRunner | None = None

    async def __aenter__(self) -> PodMetrics:
        async def metrics(request: web.Request) -> web.Response:
            found = self.metrics.get(request.match_info["pod"])
            text = "\n".join(found.render()) + "\n" if found else ""
            return web.Response(text=text, status=200 if found else 404)

        app = web.Application()
        app.router.add_get("/{pod}/metrics", metrics)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        for pod in await self.cp.run(lambda: self.cp.api.list("v1", "Pod", "shop")):
            name = pod["metadata"]["name"]
            self.metrics[name] = ProxyMetrics()
            self.cp.api.route_pod_proxy("shop", name, 4191, f"http://127.0.0.1:{port}/{name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def pod(self, prefix: str) -> tuple[str, str]:
        pods = self.cp.api.list("v1", "Pod", "shop")
        pod = next(p for p in pods if p["metadata"]["name"].startswith(prefix))
        return pod["metadata"]["name"], pod["status"]["podIP"]

    def connect(self, client: str, target: str, tls: tuple[tuple[str, str], ...]) -> None:
        self.metrics[client].tcp_stats("outbound", "dst", target, tls).opened += 2


DB_ID = "default.shop.serviceaccount.identity.lacewing.cluster.local"
MTLS = (("tls", "true"), ("server_id", DB_ID))
PLAIN = (("tls", "disabled"),)


async def test_a_meshed_namespace_passes(control_plane: ControlPlane) -> None:
    cp = control_plane
    await _meshed(cp)
    await cp.run(lambda: cp.cluster.apply(_service("db", 3306, "3306")))
    async with PodMetrics(cp) as pods:
        web_pod, _ = pods.pod("web-")
        _, db_ip = pods.pod("db-")
        pods.connect(web_pod, f"{db_ip}:3306", MTLS)
        results = await _check(cp)
    assert results == {
        "data plane namespace exists": (Status.SUCCESS, ""),
        "data plane proxies are ready": (Status.SUCCESS, ""),
        "data plane is up-to-date": (Status.SUCCESS, ""),
        "data plane and cli versions match": (Status.SUCCESS, ""),
        "data plane proxies certificate match CA": (Status.SUCCESS, ""),
        "data plane traffic to meshed peers is mTLS": (Status.SUCCESS, ""),
        "opaque ports are properly annotated": (Status.SUCCESS, ""),
    }
    # without -n: every namespace (the control plane's own proxies too), no namespace check
    everywhere = await _check(cp, ns=None)
    assert "data plane namespace exists" not in everywhere
    status, error = everywhere["data plane proxies are ready"]
    assert status is Status.ERROR and "pod lacewing/lacewing-identity-" in error
    await cp.run(cp.api.kubelet.mark_ready)
    everywhere = await _check(cp, ns=None)
    assert everywhere["data plane proxies are ready"] == (Status.SUCCESS, "")


async def test_plaintext_to_a_meshed_peer_is_reported(control_plane: ControlPlane) -> None:
    cp = control_plane
    await _meshed(cp)
    await cp.run(lambda: cp.cluster.apply(_service("db", 3306, "3306")))
    key = "data plane traffic to meshed peers is mTLS"
    async with PodMetrics(cp) as pods:
        web_pod, web_ip = pods.pod("web-")
        db_pod, db_ip = pods.pod("db-")
        service_ip = (await cp.run(lambda: cp.api.get("v1", "Service", "db", "shop")))["spec"][
            "clusterIP"
        ]
        pods.connect(web_pod, f"{db_ip}:3306", PLAIN)  # the fault: plaintext to a meshed pod
        pods.connect(web_pod, f"{service_ip}:3306", PLAIN)  # and to its (all-meshed) Service
        pods.connect(web_pod, "10.96.0.1:443", PLAIN)  # outside the mesh: not a problem
        pods.connect(db_pod, f"{web_ip}:4191", PLAIN)  # a proxy's admin port: plaintext by design
        status, error = (await _check(cp))[key]
        assert status is Status.ERROR
        assert error.splitlines() == [
            f"pod shop/{web_pod}: 2 connection(s) to meshed pod shop/{db_pod} ({db_ip}:3306)"
            " with tls=disabled",
            f"pod shop/{web_pod}: 2 connection(s) to meshed service shop/db"
            f" ({service_ip}:3306) with tls=disabled",
        ]
        options = CheckOptions(namespace="lacewing", kubeconfig=str(cp.api.kubeconfig))
        facts = Facts(options, connect=Cluster.connect)
        report = await cp.run(lambda: run_checks(data_plane_categories("shop"), facts, wait=0))
        failed = [r for c in report.categories for r in c.results if r.description == key]
        assert "LACEWING_PROXY_DESTINATION_ADDR" in failed[0].hint
        pods.metrics[web_pod] = ProxyMetrics()  # healed: the restarted client speaks mTLS
        pods.connect(web_pod, f"{db_ip}:3306", MTLS)
        assert (await _check(cp))[key] == (Status.SUCCESS, "")
        del pods.metrics[db_pod]  # a proxy whose metrics cannot be read is not a pass
        status, error = (await _check(cp))[key]
        assert status is Status.ERROR and f"pod shop/{db_pod}: cannot read" in error


async def test_missing_namespace_is_fatal(control_plane: ControlPlane) -> None:
    results = await _check(control_plane, ns="nowhere")
    assert results == {
        "data plane namespace exists": (Status.ERROR, 'the "nowhere" namespace does not exist')
    }


async def test_no_proxies_and_unready_proxies_fail(control_plane: ControlPlane) -> None:
    cp = control_plane
    await cp.create(namespace("empty"))
    status, error = (await _check(cp, ns="empty"))["data plane proxies are ready"]
    assert status is Status.ERROR and 'no "lacewing-proxy" containers found' in error
    await _meshed(cp, ready=False)
    status, error = (await _check(cp))["data plane proxies are ready"]
    assert status is Status.ERROR
    assert "the lacewing-proxy container of pod shop/web-" in error


async def test_versions_anchors_and_opaque_ports_warn(control_plane: ControlPlane) -> None:
    cp = control_plane
    await _meshed(cp)
    # a Service marks port 80 opaque, but the web pods' proxies detect protocols there
    await cp.run(lambda: cp.cluster.apply(_service("web", 8080, "8080")))
    # the control plane's trust anchors were rotated after these proxies started
    other = generate("lacewing", "cluster.local").trust_anchors_pem
    roots = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": sidecar.TRUST_ROOTS_CONFIG_MAP, "namespace": "lacewing"},
        "data": {sidecar.TRUST_ROOTS_KEY: other},
    }
    await cp.run(lambda: cp.cluster.apply(roots))
    results = await _check(cp, cli="9.0.0", latest="9.1.0")
    status, error = results["data plane is up-to-date"]
    assert status is Status.WARNING and "proxies older than 9.1.0: shop/db-" in error
    status, error = results["data plane and cli versions match"]
    assert status is Status.WARNING and "not running cli version 9.0.0" in error
    status, error = results["data plane proxies certificate match CA"]
    assert status is Status.WARNING and "differ from the control plane's: shop/" in error
    status, error = results["opaque ports are properly annotated"]
    assert status is Status.WARNING
    assert "service shop/web expects target port 80 of pod shop/web-" in error


async def test_the_cli_runs_the_data_plane_categories_after_the_control_planes(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    cp = control_plane
    for crd in render_crds(build_values()):  # the fixture installs only the control plane
        await cp.run(lambda crd=crd: cp.cluster.apply(crd))
    await _meshed(cp)
    await cp.run(cp.api.kubelet.mark_ready)
    argv = ["check", "--proxy", "-n", "shop", "--wait", "0", "--skip-version-check"]
    argv += ["--kubeconfig", str(cp.api.kubeconfig)]

    def run_cli() -> object:
        with pytest.raises(SystemExit) as exited:
            main(argv)
        return exited.value.code

    policy = ThreadedPolicy(cp.api, "lacewing")  # what the policy pod would answer `check`
    await cp.run(policy.start)
    try:
        async with PodMetrics(cp):
            code = await cp.run(run_cli)
    finally:
        await cp.run(policy.stop)
    out = capsys.readouterr().out
    assert out.index("lacewing-existence\n") < out.index("lacewing-data-plane\n")
    assert "√ data plane proxies are ready" in out
    assert code == 0 and out.rstrip().endswith("Status check results are √"), out
