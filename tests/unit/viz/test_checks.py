"""`viz check`'s checks against fake facts: what each failure says."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lacewing.errors import RuntimeEnvError
from lacewing.healthcheck.model import Status
from lacewing.healthcheck.runner import run_checks
from lacewing.viz.checks import viz_categories
from lacewing.viz.summary import Series


@dataclass
class Facts:
    namespace: bool = True
    values: Mapping[str, Any] | None = field(default_factory=lambda: {"prometheusUrl": ""})
    pods: list[Mapping[str, Any]] = field(default_factory=list)
    up: list[Series] | None = None
    components: dict[str, list[Mapping[str, Any]]] = field(
        default_factory=lambda: {"tap": [_pod("Running", True)], "web": [_pod("Running", True)]}
    )

    def namespace_exists(self) -> bool:
        return self.namespace

    def config(self) -> Mapping[str, Any] | None:
        return self.values

    def prometheus_pods(self) -> list[Mapping[str, Any]]:
        return self.pods

    def component_pods(self, name: str) -> list[Mapping[str, Any]]:
        return self.components.get(name, [])

    def query(self, promql: str) -> list[Series]:
        if self.up is None:
            raise RuntimeEnvError("cannot reach Prometheus at http://x: refused")
        return self.up


def _pod(phase: str, ready: bool, waiting: str = "") -> Mapping[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    status = {"phase": phase, "containerStatuses": [{"ready": ready, "state": state}]}
    return {"metadata": {"name": "prometheus-1"}, "status": status}


def _results(facts: Facts) -> list[tuple[str, Status, str]]:
    report = run_checks(viz_categories(), facts)
    return [(r.description, r.status, r.error) for c in report.categories for r in c.results]


def test_healthy_and_failures() -> None:
    ok = Facts(pods=[_pod("Running", True)], up=[({"job": "lacewing-proxy"}, 1.0)])
    assert all(status is Status.SUCCESS for _, status, _ in _results(ok))
    assert _results(Facts(namespace=False)) == [
        ("lacewing-viz Namespace exists", Status.ERROR, "the lacewing-viz namespace does not exist")
    ]
    crash = _results(Facts(pods=[_pod("Running", False, "CrashLoopBackOff")]))
    assert crash[-1] == (
        "prometheus pod is running",
        Status.ERROR,
        "pod prometheus-1: CrashLoopBackOff",
    )
    down = _results(Facts(pods=[_pod("Running", True)]))
    assert down[-1] == (
        "can query Prometheus",
        Status.ERROR,
        "cannot reach Prometheus at http://x: refused",
    )
    empty = _results(Facts(pods=[_pod("Running", True)], up=[]))
    assert empty[-1] == (
        "Prometheus scrapes the lacewing proxies",
        Status.WARNING,
        "no lacewing-proxy target (no meshed pod yet?)",
    )


def test_tap_and_web_pods_are_checked_and_do_not_stop_the_rest() -> None:
    facts = Facts(
        pods=[_pod("Running", True)],
        up=[({"job": "lacewing-proxy"}, 1.0)],
        components={"tap": [_pod("Pending", False)]},
    )
    results = {name: (status, error) for name, status, error in _results(facts)}
    assert results["tap pod is running"] == (Status.ERROR, "pod prometheus-1 is Pending")
    assert results["web pod is running"] == (Status.ERROR, "no web pod in lacewing-viz")
    assert results["Prometheus scrapes the lacewing proxies"] == (Status.SUCCESS, "")


def test_an_existing_prometheus_skips_the_pod_check() -> None:
    facts = Facts(values={"prometheusUrl": "http://prom:9090"}, up=[({}, 1.0)])
    names = [name for name, _, _ in _results(facts)]
    assert "prometheus pod is running" not in names
    assert "can query Prometheus" in names
