"""`lacewing viz tap` and `viz top`: live requests from the proxies' tap servers.

`tap RESOURCE` (deploy/NAME or pod/NAME, `-n NS`) opens a tap on the proxy of every meshed
pod of RESOURCE (`lacewing.viz.tapclient`: mutual TLS to port 4190) with the filter of
`--to`, `--path`, `--method`, `--authority`, `--max-rps` (`lacewing.viz.tap.tap_filter`),
and prints each ended request as it comes (`-o table` / `wide`: one `rsp` line, `-o json`:
one JSON object a line) until Ctrl-C or `--duration` seconds. `top RESOURCE` aggregates the
same stream by path (`lacewing.viz.tap.Top`): on a terminal the table is redrawn every
second; otherwise (or at the end) it is printed once.

Where: a local cluster (`--local [NAME]` or `$LACEWING_LOCAL_CLUSTER`): the CLI taps the
proxies itself. Otherwise Kubernetes: the CLI asks the viz install's tap component
(`lacewing.viz.taprelay`) through the API server's pod proxy and reads its event stream.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import UsageError

__all__ = ["TapOptions", "run_tap", "run_top", "tap_command", "top_command"]


@dataclass(frozen=True)
class TapOptions:
    resource: str
    namespace: str = "default"
    to: str | None = None
    to_namespace: str | None = None
    path: str | None = None
    method: str | None = None
    authority: str | None = None
    max_rps: float | None = None
    output: str = "table"
    duration: float | None = None
    local: str | None = None


def _kubernetes_stream(
    options: TapOptions, ctx: GlobalOptions, out: Output
) -> Iterator[dict[str, Any]]:
    from lacewing.cli.commands.viz_install import connect
    from lacewing.errors import RuntimeEnvError
    from lacewing.viz.install import NAMESPACE
    from lacewing.viz.taprelay import (
        TAP_RELAY_PORT,
        TOKEN_HEADER,
        TOKEN_KEY,
        TOKEN_SECRET,
        TapQuery,
    )

    query = TapQuery(options.resource, options.namespace, options.to, options.to_namespace,
                     options.path, options.method, options.authority, options.max_rps,
                     options.duration)  # fmt: skip
    cluster = connect(ctx)
    pods = [
        p for p in cluster.list("v1", "Pod", namespace=NAMESPACE,
                                label_selector="app.kubernetes.io/name=tap")
        if (p.get("status") or {}).get("phase") == "Running"
    ]  # fmt: skip
    if not pods:
        raise UsageError(
            f"no running tap pod in {NAMESPACE}: viz tap on Kubernetes goes through it",
            hint="`lacewing viz install | kubectl apply -f -`, then `lacewing viz check`",
        )
    tap_pod = pods[0]["metadata"]["name"]
    secret = cluster.get("v1", "Secret", TOKEN_SECRET, NAMESPACE)  # who may read it may tap
    token = ((secret or {}).get("data") or {}).get(TOKEN_KEY)
    if not token:
        raise UsageError(f"Secret {NAMESPACE}/{TOKEN_SECRET} has no {TOKEN_KEY}",
                         hint="`lacewing viz install | kubectl apply -f -` makes it")  # fmt: skip
    headers = {TOKEN_HEADER: base64.b64decode(token).decode()}
    deadline = None if options.duration is None else time.monotonic() + options.duration
    with cluster.pod_proxy_open(NAMESPACE, tap_pod, TAP_RELAY_PORT, "tap",
                                query.params(), headers) as answer:  # fmt: skip
        if answer.status_code != 200:
            body = answer.read().decode(errors="replace")
            try:
                data = json.loads(body)
                why = data.get("error") or data.get("message") or body
            except ValueError:
                why = body.strip() or f"HTTP {answer.status_code}"
            raise RuntimeEnvError(f"tap ({NAMESPACE}/{tap_pod}): {why}")
        for line in answer.iter_lines():
            if deadline is not None and time.monotonic() > deadline:
                return
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if "tapping" in event:
                names = event["tapping"]
                out.warn(f"tapping {len(names)} pod(s) of {options.resource} in "
                         f"{options.namespace} through {NAMESPACE}/{tap_pod}")  # fmt: skip
                out.err.flush()
            elif "direction" in event:
                yield event


def _stream(options: TapOptions, ctx: GlobalOptions, out: Output) -> Iterator[dict[str, Any]]:
    from lacewing.local.control import CLUSTER_ENV, check_machine, read_pods, selected_cluster
    from lacewing.local.plan import netns_prefix
    from lacewing.local.state import ClusterState
    from lacewing.viz.tap import OUTPUTS, parse_target, tap_filter
    from lacewing.viz.tapclient import local_tap_client

    if options.output not in OUTPUTS:
        raise UsageError(f"invalid -o {options.output!r}", hint="use table, wide or json")
    if options.duration is not None and not options.duration > 0:
        raise UsageError(f"invalid --duration {options.duration}", hint="a positive number")
    kind, name = parse_target(options.resource, "resource")
    wanted = tap_filter(options.namespace, options.to, options.to_namespace, options.path,
                        options.method, options.authority, options.max_rps)  # fmt: skip
    local = options.local or os.environ.get(CLUSTER_ENV)
    if not local:
        yield from _kubernetes_stream(options, ctx, out)
        return
    cluster = selected_cluster(local)
    check_machine()
    pods = [
        p for p in read_pods(cluster)
        if p.namespace == options.namespace and p.meshed
        and (p.workload == name if kind == "deployment" else p.name == name)
    ]  # fmt: skip
    if not pods:
        raise UsageError(
            f"no meshed pod of {options.resource} in namespace {options.namespace!r} "
            f"of local cluster {cluster!r}",
            hint="see `lacewing local status`",
        )
    client = local_tap_client(ClusterState(cluster).dir, netns_prefix(cluster) + "node",
                              {p.name: p.ip for p in pods})  # fmt: skip
    workload = {p.name: p.workload for p in pods}

    def opened() -> None:
        out.warn(f"tapping {len(pods)} pod(s) of {options.resource} in {options.namespace}")
        out.err.flush()

    for event in client.events([p.name for p in pods], wanted, options.duration, opened):
        # the tapped pod's own end: the CLI knows its workload (the proxy knows its pod)
        own = event["destination"] if event.get("direction") == "inbound" else event["source"]
        if isinstance(own, dict) and kind == "deployment":
            own.setdefault("deployment", workload.get(str(event.get("pod")), ""))
        yield event


def run_tap(options: TapOptions, ctx: GlobalOptions, out: Output) -> int:
    from lacewing.viz.tap import tap_line

    events = _stream(options, ctx, out)
    try:
        for event in events:
            if options.output == "json":
                out.line(json.dumps(event, sort_keys=True))
            else:
                out.line(tap_line(event, wide=options.output == "wide"))
            out.out.flush()
    except KeyboardInterrupt:
        pass
    return 0


def run_top(options: TapOptions, ctx: GlobalOptions, out: Output) -> int:
    from lacewing.viz.tap import Top

    top = Top()
    live = out.is_terminal and options.output != "json"
    events = _stream(options, ctx, out)
    drawn = time.monotonic()
    try:
        for event in events:
            top.add(event)
            if live and time.monotonic() - drawn >= 1.0:
                drawn = time.monotonic()
                out.out.write("\x1b[H\x1b[2J" + "\n".join(top.render()) + "\n")
                out.out.flush()
    except KeyboardInterrupt:
        pass
    if options.output == "json":
        out.line(json.dumps(top.ranked()))
    else:
        if live:
            out.out.write("\x1b[H\x1b[2J")
        for line in top.render():
            out.line(line)
    return 0


def _options(f: Any) -> Any:
    for option in reversed([
        click.argument("resource"),
        click.option("-n", "--namespace", default="default", show_default=True,
                     help="Namespace of RESOURCE."),
        click.option("--to", default=None, help="Only requests to this resource (KIND/NAME)."),
        click.option("--to-namespace", default=None, help="Namespace of --to [default: -n]."),
        click.option("--path", default=None, help="Only requests whose path starts with this."),
        click.option("--method", default=None, help="Only requests with this HTTP method."),
        click.option("--authority", default=None, help="Only requests to this authority."),
        click.option("--max-rps", type=float, default=None,
                     help="At most this many events per second per proxy."),
        click.option("-o", "--output", default="table", show_default=True,
                     help="table, wide or json."),
        click.option("--duration", default=None,
                     help="Stop after this long (10s, 1m, or seconds) [default: until Ctrl-C]."),
        click.option("--local", "local", default=None, help="The local cluster's name."),
    ]):  # fmt: skip
        f = option(f)
    return f


def _build(**kw: Any) -> TapOptions:
    from lacewing.viz.scrape import parse_window

    if kw.get("duration") is not None:  # the same durations as `demo --duration`
        kw["duration"] = parse_window(kw["duration"], "--duration")
    return TapOptions(**kw)


@click.command("tap")
@_options
@click.pass_obj
def tap_command(g: GlobalOptions, /, **kw: Any) -> int:
    """Live requests through the proxies of a resource: `lacewing viz tap deploy/web`."""
    return run_tap(_build(**kw), g, Output())


@click.command("top")
@_options
@click.pass_obj
def top_command(g: GlobalOptions, /, **kw: Any) -> int:
    """The most-hit paths of a resource, live from tap: `lacewing viz top deploy/web`."""
    return run_top(_build(**kw), g, Output())
