"""`lacewing local up|status|exec|logs|scale|routes|rotate-anchor|down`: a cluster of netns.

Each subcommand parses its flags into a frozen options dataclass and calls a `run_*` function
with `(options, ctx, out)`; the work is in `lacewing.local.control`. The cluster is chosen by
`--name`, else `$LACEWING_LOCAL_CLUSTER`, else `local`.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.local import control, prometheus
from lacewing.local.state import ClusterState

NAME_HELP = "Cluster name [default: $LACEWING_LOCAL_CLUSTER or 'local']."


@dataclass(frozen=True)
class UpOptions:
    file: str
    name: str | None = None
    timeout: float = 90.0


@dataclass(frozen=True)
class NameOptions:
    name: str | None = None


@dataclass(frozen=True)
class ExecOptions:
    pod: str
    argv: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True)
class LogsOptions:
    pod: str
    proxy: bool = False
    name: str | None = None


@dataclass(frozen=True)
class ScaleOptions:
    workload: str
    replicas: int
    name: str | None = None
    timeout: float = 60.0


def format_pods(pods: list[control.PodStatus]) -> list[str]:
    rows = [("NAMESPACE", "NAME", "READY", "MESHED", "RESTARTS", "IP")]
    for p in pods:
        rows.append(
            (
                p.namespace,
                p.name,
                "1/1" if p.ready else "0/1",
                "yes" if p.meshed else "no",
                str(p.restarts),
                p.ip,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def run_up(options: UpOptions, ctx: GlobalOptions, out: Output) -> int:
    name = control.selected_cluster(options.name)
    pods = control.up(options.file, name, timeout=options.timeout, progress=out.warn)
    out.line(f"local cluster {name!r} is up: {len(pods)} pods ready")
    for line in format_pods(pods):
        out.line(line)
    out.warn(prometheus.describe(ClusterState(name).dir))
    return 0


@dataclass(frozen=True)
class RotateOptions:
    step: str
    name: str | None = None


ROTATION_STEPS = {
    "add": (
        "a new trust anchor was added to the bundle",
        "wait until every proxy reports identity_trust_anchors 2, then: rotate-anchor issuer",
    ),
    "issuer": (
        "the issuer was re-signed by the new trust anchor",
        "wait until every proxy's identity_cert_refresh_count grew (70% of a certificate's "
        "life), then: rotate-anchor remove",
    ),
    "remove": (
        "the old trust anchor was removed from the bundle",
        "every proxy reports identity_trust_anchors 1 within a second or two",
    ),
}


def run_rotate_anchor(options: RotateOptions, ctx: GlobalOptions, out: Output) -> int:
    from lacewing.errors import UsageError
    from lacewing.local import anchors

    name = control.selected_cluster(options.name)
    directory = ClusterState(name).identity_dir
    if not (directory / "ca-bundle.crt").is_file():
        raise UsageError(f"no local cluster {name!r} with identity (no {directory}/ca-bundle.crt)")
    step = {
        "add": anchors.add_anchor,
        "issuer": anchors.resign_issuer,
        "remove": anchors.remove_old,
    }
    cert = step[options.step](directory)
    done, then = ROTATION_STEPS[options.step]
    out.line(f"{name}: {done} (serial {cert.serial_number:#x}, until "
             f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})")  # fmt: skip
    out.line(f"next: {then}")
    return 0


def run_status(options: NameOptions, ctx: GlobalOptions, out: Output) -> int:
    name = control.selected_cluster(options.name)
    for line in format_pods(control.read_pods(name)):
        out.line(line)
    return 0


def run_down(options: NameOptions, ctx: GlobalOptions, out: Output) -> int:
    out.line(control.down(control.selected_cluster(options.name)))
    return 0


def run_scale(options: ScaleOptions, ctx: GlobalOptions, out: Output) -> int:
    name = control.selected_cluster(options.name)
    pods = control.scale(name, options.workload, options.replicas, timeout=options.timeout)
    out.line(f"{options.workload} scaled to {options.replicas} in local cluster {name!r}")
    for line in format_pods(pods) if pods else []:
        out.line(line)
    return 0


@dataclass(frozen=True)
class RoutesOptions:
    file: str
    name: str | None = None


def run_routes(options: RoutesOptions, ctx: GlobalOptions, out: Output) -> int:
    name = control.selected_cluster(options.name)
    count = control.set_routes(name, options.file)
    out.line(f"local cluster {name!r} now has {count} route(s) from {options.file}")
    return 0


def run_exec(options: ExecOptions, ctx: GlobalOptions, out: Output) -> int:
    name = control.selected_cluster(options.name)
    return control.exec_in_pod(name, options.pod, list(options.argv))


def run_logs(options: LogsOptions, ctx: GlobalOptions, out: Output) -> int:
    name = control.selected_cluster(options.name)
    out.out.write(control.pod_logs(name, options.pod, proxy=options.proxy))
    return 0


name_option = click.option("--name", default=None, help=NAME_HELP)


@click.group("local")
def command() -> None:
    """Run a mesh on this machine: pods are network namespaces (needs root and Linux)."""


@command.command("up")
@click.option("-f", "--file", "file", required=True, help="The cluster file (YAML).")
@name_option
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for ready.")
@click.pass_obj
def up_command(g: GlobalOptions, file: str, name: str | None, timeout: float) -> int:
    """Start a local cluster and wait until every pod is ready."""
    return run_up(UpOptions(file=file, name=name, timeout=timeout), g, Output())


@command.command("routes")
@click.option("-f", "--file", "file", required=True, help="HTTPRoute / GRPCRoute documents (YAML).")
@name_option
@click.pass_obj
def routes_command(g: GlobalOptions, file: str, name: str | None) -> int:
    """Replace a running cluster's HTTPRoutes and GRPCRoutes with those in FILE (applied
    within a second)."""
    return run_routes(RoutesOptions(file=file, name=name), g, Output())


@command.command("rotate-anchor")
@click.argument("step", type=click.Choice(list(ROTATION_STEPS)))
@name_option
@click.pass_obj
def rotate_anchor_command(g: GlobalOptions, step: str, name: str | None) -> int:
    """Rotate the trust anchor with overlap, one STEP at a time: add, issuer, remove."""
    return run_rotate_anchor(RotateOptions(step=step, name=name), g, Output())


@command.command("status")
@name_option
@click.pass_obj
def status_command(g: GlobalOptions, name: str | None) -> int:
    """List the cluster's pods: ready, meshed, restarts, address."""
    return run_status(NameOptions(name=name), g, Output())


@command.command("down")
@name_option
@click.pass_obj
def down_command(g: GlobalOptions, name: str | None) -> int:
    """Stop the cluster and remove everything it created (also after a crash)."""
    return run_down(NameOptions(name=name), g, Output())


@command.command("exec", context_settings={"ignore_unknown_options": True})
@name_option
@click.argument("pod")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def exec_command(g: GlobalOptions, name: str | None, pod: str, argv: tuple[str, ...]) -> int:
    """Run a command inside POD's network namespace: `lacewing local exec web-0 -- curl web`."""
    return run_exec(ExecOptions(pod=pod, argv=argv, name=name), g, Output())


@command.command("logs")
@name_option
@click.argument("pod")
@click.option("--proxy", is_flag=True, help="Show the pod's proxy log instead of the app's.")
@click.pass_obj
def logs_command(g: GlobalOptions, name: str | None, pod: str, proxy: bool) -> int:
    """Print the log of POD's app (or of its proxy)."""
    return run_logs(LogsOptions(pod=pod, proxy=proxy, name=name), g, Output())


@command.command("scale")
@name_option
@click.argument("workload")
@click.option("--replicas", type=int, required=True, help="How many pods the workload runs.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for ready.")
@click.pass_obj
def scale_command(
    g: GlobalOptions, name: str | None, workload: str, replicas: int, timeout: float
) -> int:
    """Scale WORKLOAD to --replicas pods and wait until they are all ready."""
    options = ScaleOptions(workload=workload, replicas=replicas, name=name, timeout=timeout)
    return run_scale(options, g, Output())
