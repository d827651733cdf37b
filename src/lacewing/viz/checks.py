"""`lacewing viz check`: the viz extension's health, declared as data like `check`'s categories.

    lacewing-viz
    ------------
    √ lacewing-viz Namespace exists
    √ lacewing-viz ConfigMap exists
    √ prometheus pod is running              (skipped with prometheusUrl: not ours to run)
    √ can query Prometheus                   (`up`, through the API server's pod proxy, or
                                              the prometheusUrl)
    √ tap pod is running                     (viz tap on Kubernetes goes through it)
    √ web pod is running                     (viz dashboard on Kubernetes shows it)
    √ Prometheus scrapes the lacewing proxies (a warning: no meshed pod is not an error)

The checks receive a `VizFacts`: the CLI's object that reads the cluster (see
`lacewing.cli.commands.viz_install`); each fact is a method, so checks share no state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from lacewing.healthcheck.model import Category, Check, Outcome
from lacewing.viz.install import CONFIG_MAP, NAMESPACE
from lacewing.viz.scrapeconfig import PROXY_JOB
from lacewing.viz.summary import Series

__all__ = ["VIZ_CATEGORY", "VizFacts", "viz_categories"]

VIZ_CATEGORY = "lacewing-viz"
INSTALL = "install it with `lacewing viz install | kubectl apply -f -`"


class VizFacts(Protocol):
    def namespace_exists(self) -> bool: ...

    def config(self) -> Mapping[str, Any] | None: ...

    def prometheus_pods(self) -> list[Mapping[str, Any]]: ...

    def component_pods(self, name: str) -> list[Mapping[str, Any]]: ...

    def query(self, promql: str) -> list[Series]: ...


def _namespace(facts: VizFacts) -> Outcome:
    if facts.namespace_exists():
        return Outcome.ok()
    return Outcome.fail(f"the {NAMESPACE} namespace does not exist")


def _config(facts: VizFacts) -> Outcome:
    if facts.config() is not None:
        return Outcome.ok()
    return Outcome.fail(f"ConfigMap {NAMESPACE}/{CONFIG_MAP} is missing or unreadable")


def _external(facts: VizFacts) -> str:
    return str((facts.config() or {}).get("prometheusUrl") or "")


def _pod_problem(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "?")
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return f"pod {name}: {waiting['reason']}"
    if status.get("phase") != "Running":
        return f"pod {name} is {status.get('phase', 'not scheduled')}"
    ready = [c.get("ready") for c in status.get("containerStatuses") or []]
    if not ready or not all(ready):
        return f"pod {name} is running but not ready"
    return None


def _running(facts: VizFacts) -> Outcome:
    if _external(facts):
        return Outcome.skip("an existing Prometheus is used")
    pods = facts.prometheus_pods()
    if not pods:
        return Outcome.fail(f"no prometheus pod in {NAMESPACE}")
    problems = [p for p in (_pod_problem(pod) for pod in pods) if p]
    if len(problems) == len(pods):
        if any("BackOff" in p for p in problems):
            return Outcome.give_up(problems[0])
        return Outcome.fail(problems[0])
    return Outcome.ok()


def _component(name: str) -> Callable[[VizFacts], Outcome]:
    def check(facts: VizFacts) -> Outcome:
        pods = facts.component_pods(name)
        if not pods:
            return Outcome.fail(f"no {name} pod in {NAMESPACE}")
        problems = [p for p in (_pod_problem(pod) for pod in pods) if p]
        if len(problems) == len(pods):
            if any("BackOff" in p for p in problems):
                return Outcome.give_up(problems[0])
            return Outcome.fail(problems[0])
        return Outcome.ok()

    return check


def _query(facts: VizFacts) -> Outcome:
    facts.query("up")  # raises, with Prometheus' or the transport's reason, when it cannot
    return Outcome.ok()


def _scrapes(facts: VizFacts) -> Outcome:
    up = facts.query(f'up{{job="{PROXY_JOB}"}}')
    healthy = sum(1 for _, value in up if value == 1)
    if healthy:
        return Outcome.ok()
    if up:
        return Outcome.fail(f"{len(up)} lacewing-proxy targets, none up")
    return Outcome.fail(
        "no lacewing-proxy target (no meshed pod yet?)",
        hint="mesh a workload: kubectl annotate ns NS lacewing.io/inject=enabled",
    )


def viz_categories() -> list[Category[VizFacts]]:
    return [
        Category(
            VIZ_CATEGORY,
            (
                Check("lacewing-viz Namespace exists", INSTALL, _namespace, fatal=True),
                Check("lacewing-viz ConfigMap exists", INSTALL, _config, fatal=True),
                Check(
                    "prometheus pod is running",
                    f"see `kubectl -n {NAMESPACE} describe pod -l app.kubernetes.io/name="
                    "prometheus`",
                    _running,
                    fatal=True,
                    retry_deadline=True,
                ),
                Check(
                    "can query Prometheus",
                    "check the prometheus pod's logs, or the prometheusUrl value",
                    _query,
                    fatal=True,
                    retry_deadline=True,
                ),
                *(
                    Check(
                        f"{name} pod is running",
                        f"see `kubectl -n {NAMESPACE} logs deploy/{name}`",
                        _component(name),
                        retry_deadline=True,
                    )
                    for name in ("tap", "web")
                ),
                Check(
                    "Prometheus scrapes the lacewing proxies",
                    "check that meshed pods expose the lacewing-admin port",
                    _scrapes,
                    warning=True,
                    retry_deadline=True,
                ),
            ),
        )
    ]
