"""`lacewing viz install | uninstall | check`: the viz extension on Kubernetes.

`install` prints `lacewing.viz.install.render_viz` for `kubectl apply -f -` (`--set` values,
`-o yaml|json`); `uninstall` prints the skeletons of its cluster-scoped objects and its
namespace (which takes the rest) for `kubectl delete -f -`, only those present unless
`--ignore-cluster`; `check` runs `lacewing.viz.checks` with `check`'s renderers.

`KubeVizFacts` is what the checks and `viz stat` read: the namespace, the values ConfigMap,
the Prometheus pods, and a `Prometheus` to query, which is the configured `prometheusUrl`
(queried from where the CLI runs) or the first running prometheus pod through the API
server's pod proxy.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import click
import yaml

from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import UsageError
from lacewing.healthcheck.render import HumanRenderer, to_json
from lacewing.healthcheck.runner import run_checks
from lacewing.install.output import FORMATS, dump, skeleton
from lacewing.viz.checks import viz_categories
from lacewing.viz.install import (
    CONFIG_MAP,
    NAMESPACE,
    PORT,
    PROMETHEUS_LABELS,
    VizValues,
    parse_sets,
    render_viz,
)
from lacewing.viz.prometheus import HttpPrometheus, PodProxyPrometheus, Prometheus
from lacewing.viz.summary import Series

__all__ = ["KubeVizFacts", "check_command", "install_command", "uninstall_command"]

SELECTOR = ",".join(f"{k}={v}" for k, v in PROMETHEUS_LABELS.items())


class KubeVizFacts:
    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster

    def refresh(self) -> None:
        self.__dict__.pop("_config", None)
        self.__dict__.pop("_prometheus", None)

    def namespace_exists(self) -> bool:
        return self.cluster.get("v1", "Namespace", NAMESPACE) is not None

    @cached_property
    def _config(self) -> Mapping[str, Any] | None:
        cm = self.cluster.get("v1", "ConfigMap", CONFIG_MAP, NAMESPACE)
        if cm is None:
            return None
        try:
            data = yaml.safe_load((cm.get("data") or {}).get("values") or "")
        except yaml.YAMLError:
            return None
        return data if isinstance(data, dict) else None

    def config(self) -> Mapping[str, Any] | None:
        return self._config

    def prometheus_pods(self) -> list[Mapping[str, Any]]:
        pods: list[Mapping[str, Any]] = self.cluster.list(
            "v1", "Pod", namespace=NAMESPACE, label_selector=SELECTOR
        )
        return pods

    def component_pods(self, name: str) -> list[Mapping[str, Any]]:
        selector = f"app.kubernetes.io/name={name},app.kubernetes.io/part-of=lacewing-viz"
        pods: list[Mapping[str, Any]] = self.cluster.list(
            "v1", "Pod", namespace=NAMESPACE, label_selector=selector
        )
        return pods

    @cached_property
    def _prometheus(self) -> Prometheus:
        url = str((self.config() or {}).get("prometheusUrl") or "")
        if url:
            return HttpPrometheus(url)
        running = [
            p for p in self.prometheus_pods() if (p.get("status") or {}).get("phase") == "Running"
        ]
        if not running:
            raise UsageError(
                f"no running Prometheus in namespace {NAMESPACE}",
                hint="`lacewing viz install | kubectl apply -f -` (or pass --prometheus-url URL)",
            )
        name = str(running[0]["metadata"]["name"])

        def get(path: str) -> str:
            return str(self.cluster.pod_proxy_get(NAMESPACE, name, PORT, path))

        return PodProxyPrometheus(get, f"pod {NAMESPACE}/{name}")

    def prometheus(self) -> Prometheus:
        return self._prometheus

    def query(self, promql: str) -> list[Series]:
        return self.prometheus().query(promql)


def connect(ctx: GlobalOptions) -> Any:
    from lacewing.k8s.cluster import Cluster

    return Cluster.connect(ctx.kubeconfig, ctx.context)


@dataclass(frozen=True)
class VizInstallOptions:
    sets: tuple[str, ...] = ()
    output: str = "yaml"
    ignore_cluster: bool = False


def _output(output: str) -> str:
    if output not in FORMATS:
        raise UsageError(f"invalid -o {output!r}", hint="use yaml or json")
    return output


def run_install(options: VizInstallOptions, ctx: GlobalOptions, out: Output) -> int:
    output = _output(options.output)
    out.out.write(dump(render_viz(parse_sets(options.sets)), output))
    return 0


def run_uninstall(
    options: VizInstallOptions, ctx: GlobalOptions, out: Output, connect: Any = connect
) -> int:
    output = _output(options.output)
    # what deleting the namespace does not take: cluster-wide objects, and tap's Role and
    # RoleBinding in the control plane's namespace
    docs = [
        skeleton(d)
        for d in render_viz(parse_sets(()))
        if d["metadata"].get("namespace") in (None, VizValues().control_plane_namespace)
    ]
    if not options.ignore_cluster:
        cluster = connect(ctx)
        present = []
        for doc in docs:
            meta = doc["metadata"]
            found = cluster.get(doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace"))
            if found is not None:
                present.append(doc)
        docs = present
        if not docs:
            out.warn("lacewing-viz is not installed")
    if docs:
        out.out.write(dump(docs, output))
    return 0


@dataclass(frozen=True)
class VizCheckOptions:
    output: str = "basic"
    wait: float = 0.0


def run_check(
    options: VizCheckOptions, ctx: GlobalOptions, out: Output, connect: Any = connect
) -> int:
    if options.output not in ("basic", "short", "json"):
        raise UsageError(f"invalid -o {options.output!r}", hint="use basic, short or json")
    facts = KubeVizFacts(connect(ctx))
    human = None
    if options.output != "json":
        human = HumanRenderer(
            out.out, short=options.output == "short", terminal=out.is_terminal, progress=out.err
        )
    report = run_checks(
        viz_categories(), facts, wait=options.wait, observer=human, sleep=time.sleep
    )
    if human is None:
        out.line(to_json(report))
    else:
        human.finish(report)
    return 0 if report.success else 1


@click.command("install")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="e.g. prometheusUrl=URL.")
@click.option("-o", "--output", default="yaml", show_default=True, help="yaml or json.")
@click.pass_obj
def install_command(g: GlobalOptions, sets: tuple[str, ...], output: str) -> int:
    """Print the viz extension (Prometheus in lacewing-viz) for `kubectl apply -f -`."""
    return run_install(VizInstallOptions(sets=sets, output=output), g, Output())


@click.command("uninstall")
@click.option("-o", "--output", default="yaml", show_default=True, help="yaml or json.")
@click.option("--ignore-cluster", is_flag=True, help="Print everything, without asking the API.")
@click.pass_obj
def uninstall_command(g: GlobalOptions, output: str, ignore_cluster: bool) -> int:
    """Print what `viz install` made, for `kubectl delete -f -`."""
    options = VizInstallOptions(output=output, ignore_cluster=ignore_cluster)
    return run_uninstall(options, g, Output())


@click.command("check")
@click.option("-o", "--output", default="basic", show_default=True, help="basic, short or json.")
@click.option("--wait", default="0s", show_default=True, help="Retry failing checks this long.")
@click.pass_obj
def check_command(g: GlobalOptions, output: str, wait: str) -> int:
    """Is the viz extension healthy? (`check`'s format)"""
    from lacewing.viz.scrape import parse_window

    seconds = 0.0 if wait in ("0", "0s") else parse_window(wait, "--wait")
    return run_check(VizCheckOptions(output=output, wait=seconds), g, Output())
