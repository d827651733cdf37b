"""`lacewing inject` / `lacewing uninject`: add or remove the mesh in manifests.

How it works: each FILE, DIR (its .yaml/.yml/.json files, sorted, recursively) or `-` (stdin)
is parsed into documents (one JSON value, or a YAML stream), handed to
`lacewing.controller.injector.workloads.transform` with the chosen change, and printed in the
same order: a single JSON input comes back as JSON, everything else as `---`-separated YAML.
Comments are lost; fields, their order and the order of documents are kept. One line per
object goes to stderr (`deployment "web" injected`, or why an object was left unchanged).

`inject` only adds `lacewing.io/inject: enabled`; the webhook injects when pods are created.
`inject --manual` writes the sidecar itself, with the webhook's own patch, from the install
values read from the cluster's `lacewing-config` (or the defaults with `--ignore-cluster`,
plus any `--set`). `uninject` removes both kinds of injection.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
import yaml

from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import ClusterError, UsageError

if TYPE_CHECKING:
    from lacewing.controller.injector.workloads import Change
    from lacewing.install.values import Values

__all__ = [
    "InjectOptions",
    "inject_command",
    "read_documents",
    "run_inject",
    "run_uninject",
    "uninject_command",
]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class InjectOptions:
    sources: tuple[str, ...] = ("-",)
    manual: bool = False
    native_sidecar: bool = False
    ignore_cluster: bool = False
    sets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    name: str
    docs: list[Any]
    is_json: bool


def _parse(name: str, text: str) -> Source:
    if text.lstrip().startswith(("{", "[")):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}",
                hint="fix the file or pass YAML",
            ) from None
        return Source(name, value if isinstance(value, list) else [value], True)
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{name} is not valid YAML{where}", hint="fix the file") from None
    return Source(name, docs, False)


def read_documents(sources: Sequence[str], stdin: TextIO) -> list[Source]:
    """Parse every FILE, DIR or `-` (see the module docstring)."""
    parsed: list[Source] = []
    for source in sources:
        if source == "-":
            parsed.append(_parse("<stdin>", stdin.read()))
            continue
        path = Path(source)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES
            )
        elif path.exists():
            files = [path]
        else:
            raise UsageError(f"{source}: no such file or directory", hint="give a FILE, DIR or -")
        for file in files:
            try:
                text = file.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"cannot read {file}: {exc}") from None
            parsed.append(_parse(str(file), text))
    return parsed


def _render(sources: list[Source], docs: list[Any]) -> str:
    from lacewing.install.output import dump_yaml

    if len(sources) == 1 and sources[0].is_json and len(docs) == 1:
        return json.dumps(docs[0], indent=2) + "\n"
    return dump_yaml(docs)


def _cluster_values(options: InjectOptions, ctx: GlobalOptions) -> Values:
    from lacewing.controller.injector.config import values_from_config
    from lacewing.k8s.cluster import CONFIG_MAP_NAME, Cluster

    with Cluster.connect(ctx.kubeconfig, ctx.context, timeout=10.0) as cluster:
        config = cluster.get("v1", "ConfigMap", CONFIG_MAP_NAME, ctx.namespace)
    if config is None:
        raise ClusterError(
            f'ConfigMap "{CONFIG_MAP_NAME}" was not found in namespace "{ctx.namespace}"',
            hint="install lacewing first, or pass --ignore-cluster to use the default values",
        )
    return values_from_config(config, f"ConfigMap {ctx.namespace}/{CONFIG_MAP_NAME}")


ValuesSource = Callable[[InjectOptions, GlobalOptions], "Values"]


def _values(options: InjectOptions, ctx: GlobalOptions, source: ValuesSource) -> Values:
    from lacewing.install.values import build_values

    base = build_values(overrides={"namespace": ctx.namespace})
    if not options.ignore_cluster:
        try:
            base = source(options, ctx)
        except ClusterError as exc:
            raise ClusterError(
                f"cannot read the install values: {exc.message}",
                hint=exc.hint or "pass --ignore-cluster to inject with the default values",
            ) from None
    return build_values(base, sets=options.sets)


def _run(options: InjectOptions, out: Output, change: Change, stdin: TextIO) -> int:
    from lacewing.controller.injector.workloads import transform

    sources = read_documents(options.sources, stdin)
    docs: list[Any] = []
    for source in sources:
        changed, notes = transform(source.docs, change)
        docs += changed
        for note in notes:
            out.warn(str(note))
    if docs:
        out.out.write(_render(sources, docs))
    return 0


def run_inject(
    options: InjectOptions,
    ctx: GlobalOptions,
    out: Output,
    *,
    stdin: TextIO | None = None,
    values_source: ValuesSource = _cluster_values,
) -> int:
    from lacewing.controller.injector import workloads
    from lacewing.install.values import build_values

    change = workloads.annotate(build_values(overrides={"namespace": ctx.namespace}))
    if options.manual:
        values = _values(options, ctx, values_source)
        change = workloads.inject_manual(values, options.native_sidecar)
    elif options.native_sidecar or options.sets or options.ignore_cluster:
        raise UsageError(
            "--proxy-native-sidecar, --set and --ignore-cluster only apply with --manual",
            hint="without --manual only the lacewing.io/inject annotation is added; "
            "configure the proxy with config.lacewing.io/* annotations",
        )
    return _run(options, out, change, stdin or sys.stdin)


def run_uninject(
    options: InjectOptions, ctx: GlobalOptions, out: Output, *, stdin: TextIO | None = None
) -> int:
    from lacewing.controller.injector import workloads

    return _run(options, out, workloads.uninject, stdin or sys.stdin)


_SOURCES = click.argument("sources", nargs=-1, required=True, metavar="FILE|DIR|-...")


@click.command("inject")
@_SOURCES
@click.option("--manual", is_flag=True, help="Write the proxy into the spec (no webhook needed).")
@click.option(
    "--proxy-native-sidecar",
    "native_sidecar",
    is_flag=True,
    help="With --manual: run the proxy as a native sidecar (an init container), for Jobs.",
)
@click.option(
    "--ignore-cluster",
    is_flag=True,
    help="With --manual: use the default install values instead of the cluster's.",
)
@click.option("--set", "sets", multiple=True, help="With --manual: override a value (a.b=c).")
@click.pass_obj
def inject_command(
    g: GlobalOptions,
    sources: tuple[str, ...],
    manual: bool,
    native_sidecar: bool,
    ignore_cluster: bool,
    sets: tuple[str, ...],
) -> int:
    """Add the mesh to the workloads in FILE, DIR or - (stdin); print the result."""
    options = InjectOptions(sources, manual, native_sidecar, ignore_cluster, sets)
    return run_inject(options, g, Output())


@click.command("uninject")
@_SOURCES
@click.pass_obj
def uninject_command(g: GlobalOptions, sources: tuple[str, ...]) -> int:
    """Remove the mesh from the workloads in FILE, DIR or - (stdin); print the result."""
    return run_uninject(InjectOptions(sources), g, Output())
