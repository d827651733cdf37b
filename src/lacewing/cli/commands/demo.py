"""`lacewing demo`: the bundled demo mesh on this machine, with live golden metrics.

`run` starts the demo's local cluster (`lacewing.local.demo.CLUSTER_FILE`), waits until the
mesh carries vote-bot's traffic, takes a first snapshot (vote-bot's counts and every proxy's
metrics, see `lacewing.local.demo.run`), then either refreshes a table every `REFRESH` seconds
over the last `LIVE_WINDOW` seconds until Ctrl-C, or with `--duration` waits that long. It
then prints the final table over the whole run, the line comparing it with vote-bot's own
counts, and always tears the cluster down. `--canary` runs `CANARY_FILE` instead: the same
mesh plus emoji-canary, which an HTTPRoute gives 10% of web's calls to emoji.

With `--policy` the cluster file gets the demo's authorization policy too
(`lacewing.local.demo.POLICY_FILE`: the voting Server's routes, votes for web alone), and
once traffic flows the demo shows a denied call (`lacewing.local.demo.denied`); the exit
status is 1 if any of its calls got something else than the policy says.

While it runs, the viz dashboard (`lacewing.viz.dashboard`, the page `viz dashboard --local`
serves) is served on 127.0.0.1 from the cluster's Prometheus, and its URL is printed on
stderr (`lacewing dashboard: http://127.0.0.1:PORT/`) once the mesh carries traffic. The
port is `--dashboard-port` (50750 by default, as `viz dashboard`'s; 0 picks a free one); when
the default is taken, a free one is used and the line says so. Without Prometheus there are
no figures to show, so there is no dashboard, and the Prometheus line says how to install it.
The server stops before the cluster goes.
"""

from __future__ import annotations

import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import UsageError
from lacewing.local import control, prometheus
from lacewing.local.demo import CANARY_FILE, CLUSTER_FILE, POLICY_FILE
from lacewing.local.demo import denied as policy_demo
from lacewing.local.demo.run import Measure, Snapshot, snapshot, wait_for_traffic
from lacewing.local.state import ClusterState
from lacewing.viz.scrape import parse_window
from lacewing.viz.table import render_plain, render_rich

REFRESH = 2.0
LIVE_WINDOW = 10.0


@dataclass(frozen=True)
class DemoOptions:
    duration: float | None = None
    name: str = "demo"
    canary: bool = False  # the emoji-canary and its 90/10 HTTPRoute (canary.yaml)
    policy: bool = False  # add the demo's authorization policy and show a denied call
    dashboard_port: int | None = None  # None: viz dashboard's default, or any free port


@contextmanager
def _dashboard(options: DemoOptions, ctx: GlobalOptions, out: Output) -> Iterator[None]:
    """Serve the viz dashboard of the demo's cluster on 127.0.0.1 while the block runs."""
    import lacewing.cli.commands.viz  # noqa: F401  (first: it adds viz_dashboard's command)
    from lacewing.cli.commands.viz_dashboard import (
        DEFAULT_PORT,
        DashboardOptions,
        dashboard_source,
        open_server,
    )
    from lacewing.viz.dashboard.api import Api
    from lacewing.viz.dashboard.server import DashboardServer, running

    if prometheus.pid(ClusterState(options.name).dir) is None:
        yield  # no figures to show; the prometheus line said why
        return
    source = dashboard_source(DashboardOptions(local=options.name), ctx)
    note = ""
    if options.dashboard_port is None:
        try:
            server = DashboardServer(Api(source), "127.0.0.1", DEFAULT_PORT)
        except OSError:
            server = open_server(Api(source), "127.0.0.1", 0)
            note = f" (port {DEFAULT_PORT} is taken)"
    else:
        server = open_server(Api(source), "127.0.0.1", options.dashboard_port)
    with running(server):
        out.warn(f"lacewing dashboard: {server.url}{note}")
        out.err.flush()
        yield


def _live(options: DemoOptions, out: Output, first: Snapshot) -> None:
    """Refresh a table until Ctrl-C: rich when writing to a terminal, plain text otherwise."""
    history: deque[Snapshot] = deque([first])
    title = "lacewing demo: inbound golden metrics per workload (Ctrl-C to stop)"
    if out.is_terminal:
        from rich.console import Console
        from rich.live import Live

        with Live(console=Console(file=out.out), auto_refresh=False) as live:
            while True:
                time.sleep(REFRESH)
                history.append(snapshot(options.name))
                while history[-1].at - history[0].at > LIVE_WINDOW and len(history) > 2:
                    history.popleft()
                measure = Measure.between(history[0], history[-1])
                live.update(render_rich(measure.rows, title), refresh=True)  # type: ignore[arg-type]
    while True:
        time.sleep(REFRESH * 2.5)
        history.append(snapshot(options.name))
        measure = Measure.between(history[-2], history[-1])
        out.out.write(render_plain(measure.rows, tls=True) + "\n")
        out.out.flush()


def run(options: DemoOptions, ctx: GlobalOptions, out: Output) -> int:
    control.check_machine()
    if ClusterState(options.name).alive():
        raise UsageError(
            f"a local cluster named {options.name!r} is already running",
            hint=f"stop it with `lacewing local down --name {options.name}` or use --name",
        )
    extra = ", emoji-canary with 10% of emoji's calls" if options.canary else ""
    out.warn(f"starting the demo mesh (web, emoji x2, voting, vote-bot{extra}) ...")
    shown = None
    try:
        with tempfile.TemporaryDirectory(prefix="lacewing-demo-") as tmp:
            control.up(_cluster_file(options, Path(tmp)), options.name, progress=out.warn)
        out.warn(prometheus.describe(ClusterState(options.name).dir))
        wait_for_traffic(options.name)
        if options.policy:
            shown = policy_demo.show(options.name)
            for line in shown.lines():
                out.line(line)
        first = snapshot(options.name)
        with _dashboard(options, ctx, out):
            try:
                if options.duration is not None:
                    out.warn(f"running for {options.duration:g}s ...")
                    time.sleep(options.duration)
                else:
                    _live(options, out, first)
            except KeyboardInterrupt:
                pass
        last = snapshot(options.name)
        measure = Measure.between(first, last)
        out.line(f"lacewing demo: golden metrics over the last {measure.window:.1f}s")
        out.out.write(render_plain(measure.rows, tls=True))
        ok, line = measure.agreement()
        out.line(line)
        return 0 if ok and (shown is None or shown.ok) else 1
    finally:
        out.warn(control.down(options.name))


def _cluster_file(options: DemoOptions, tmp: Path) -> Path:
    """The bundled cluster file (or the canary's), with the demo's policy documents after it
    for `--policy`."""
    base = CANARY_FILE if options.canary else CLUSTER_FILE
    if not options.policy:
        return base
    both = tmp / "cluster.yaml"
    both.write_text(base.read_text() + "\n---\n" + POLICY_FILE.read_text())
    return both


@click.command("demo")
@click.option("--duration", default=None, help="Run this long (e.g. 30s), print the table, stop.")
@click.option("--name", default="demo", show_default=True, help="Name of the demo's cluster.")
@click.option(
    "--canary", is_flag=True, help="Add emoji-canary, given 10% of emoji's calls by an HTTPRoute."
)
@click.option(
    "--policy",
    is_flag=True,
    help="Add authorization policy (votes for web only) and show a denied call.",
)
@click.option(
    "--dashboard-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port of the dashboard on 127.0.0.1 (0: any free one) [default: 50750, else any].",
)
@click.pass_obj
def command(
    g: GlobalOptions,
    duration: str | None,
    name: str,
    canary: bool,
    policy: bool,
    dashboard_port: int | None,
) -> int:
    """Run a demo mesh on this machine and show its live metrics (needs root and Linux)."""
    seconds = None if duration is None else parse_window(duration, "--duration")
    options = DemoOptions(
        duration=seconds,
        name=control.selected_cluster(name),
        canary=canary,
        policy=policy,
        dashboard_port=dashboard_port,
    )
    return run(options, g, Output())
