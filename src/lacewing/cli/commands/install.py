"""`lacewing install [--crds]`, `lacewing upgrade`, `lacewing uninstall`: manifests on stdout.

How it works: flags become an `InstallOptions`; `run_install` / `run_upgrade` /
`run_uninstall` turn it into values (`install.values.build_values`: defaults or the stored
values, then `--values` files, `--set`s, then the dedicated flags), credentials
(`install.credentials`: generated, from files, or read back from the cluster), rendered
objects (`install.render`) and text (`install.output`). They print manifests; `kubectl apply`
does the applying, so what lacewing would change is always reviewable.

Before rendering, `install` asks the cluster (unless `--ignore-cluster`) whether the CRDs are
there and whether the namespace is free; `upgrade` reads the stored values, trust anchors and
issuer from it. The cluster is reached through `lacewing.k8s.cluster.Cluster`, injected as a
`connect` function so tests use a fake.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import (
    AlreadyInstalled,
    CertificateError,
    ClusterError,
    ClusterUnreachable,
    ConfigError,
)

__all__ = [
    "InstallOptions",
    "install_command",
    "run_install",
    "run_uninstall",
    "run_upgrade",
    "uninstall_command",
    "upgrade_command",
]


class ClusterReader(Protocol):
    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None: ...


Connect = Callable[[GlobalOptions], ClusterReader]


def _connect(g: GlobalOptions) -> ClusterReader:
    from lacewing.k8s.cluster import Cluster

    return Cluster.connect(g.kubeconfig, g.context)


@dataclass(frozen=True)
class InstallOptions:
    crds: bool = False
    ha: bool | None = None
    image: str | None = None
    tag: str | None = None
    proxy_cpu_request: str | None = None
    proxy_cpu_limit: str | None = None
    proxy_memory_request: str | None = None
    proxy_memory_limit: str | None = None
    sets: tuple[str, ...] = ()
    values_files: tuple[str, ...] = ()
    output: str = "yaml"
    ignore_cluster: bool = False
    trust_anchors_file: str | None = None
    issuer_certificate_file: str | None = None
    issuer_key_file: str | None = None
    external_issuer: bool | None = None
    trust_domain: str | None = None
    issuance_lifetime: str | None = None


# Flag -> value key path: the table that keeps flags and values in one place.
FLAG_KEYS: dict[str, str] = {
    "ha": "ha",
    "image": "image.name",
    "tag": "image.tag",
    "proxy_cpu_request": "proxy.resources.cpuRequest",
    "proxy_cpu_limit": "proxy.resources.cpuLimit",
    "proxy_memory_request": "proxy.resources.memoryRequest",
    "proxy_memory_limit": "proxy.resources.memoryLimit",
    "external_issuer": "identity.externalIssuer",
    "trust_domain": "identity.trustDomain",
    "issuance_lifetime": "identity.issuanceLifetime",
}


def _overrides(options: InstallOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, path in FLAG_KEYS.items():
        value = getattr(options, attr)
        if value is None:
            continue
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _values(options: InstallOptions, base: dict[str, Any]) -> Any:
    from lacewing.install.values import build_values

    return build_values(base, options.values_files, options.sets, _overrides(options))


def _identity_files(options: InstallOptions) -> Any:
    from lacewing.install.credentials import IdentityFiles

    return IdentityFiles(
        options.trust_anchors_file, options.issuer_certificate_file, options.issuer_key_file
    )


def _credentials(options: InstallOptions, values: Any) -> Any:
    from lacewing.install import credentials

    files = _identity_files(options)
    external = values.identity.external_issuer
    if files.given:
        return credentials.from_files(values.namespace, files, external_issuer=external)
    return credentials.generate(
        values.namespace, values.identity.trust_domain, external_issuer=external
    )


def _print(out: Output, docs: list[dict[str, Any]], output: str) -> None:
    from lacewing.install.output import dump

    out.out.write(dump(docs, output))


def _check_cluster(cluster: ClusterReader, values: Any, anchors_given: bool) -> None:
    """CRDs present; namespace free (with an external issuer: prepared for cert-manager)."""
    from lacewing.install.crds import crd_names
    from lacewing.install.render import CONFIG_MAP, ISSUER_SECRET
    from lacewing.install.sidecar import TRUST_ROOTS_CONFIG_MAP

    namespace = values.namespace
    missing = [
        name
        for name in crd_names()
        if cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name) is None
    ]
    if missing:
        raise ClusterError(
            f"the lacewing CRDs are not installed (missing: {', '.join(missing)})",
            hint="run `lacewing install --crds | kubectl apply -f -` first",
        )
    upgrade_hint = (
        "to change an installed control plane run `lacewing upgrade | kubectl apply -f -`"
    )
    if not values.identity.external_issuer:
        if cluster.get("v1", "Namespace", namespace) is not None:
            raise AlreadyInstalled(
                f'the control plane namespace "{namespace}" already exists', hint=upgrade_hint
            )
        return
    # cert-manager needs the namespace first, so here it may exist, but not lacewing in it.
    if cluster.get("v1", "ConfigMap", CONFIG_MAP, namespace) is not None:
        raise AlreadyInstalled(f'lacewing is already installed in "{namespace}"', hint=upgrade_hint)
    needed = [("Secret", ISSUER_SECRET)]
    if not anchors_given:
        needed.append(("ConfigMap", TRUST_ROOTS_CONFIG_MAP))
    for kind, name in needed:
        if cluster.get("v1", kind, name, namespace) is None:
            raise ClusterError(
                f'--identity-external-issuer: {kind} "{name}" does not exist in "{namespace}"',
                hint="create it with cert-manager / trust-manager first: see docs/cert-manager.md",
            )


def run_install(
    options: InstallOptions, ctx: GlobalOptions, out: Output, connect: Connect = _connect
) -> int:
    from lacewing.install.render import render_control_plane, render_crds

    values = _values(options, {"namespace": ctx.namespace})
    if options.crds:
        _print(out, render_crds(values), options.output)
        return 0
    creds = _credentials(options, values)  # files first: a bad file needs no cluster
    if not options.ignore_cluster:
        try:
            anchors_given = bool(options.trust_anchors_file)
            _check_cluster(connect(ctx), values, anchors_given)
        except ClusterUnreachable as exc:
            raise ClusterUnreachable(
                exc.message, hint=f"{exc.hint}; or render without a cluster: --ignore-cluster"
            ) from None
    _print(out, render_control_plane(values, creds), options.output)
    return 0


def _decode(data: dict[str, Any], key: str) -> str | None:
    raw = data.get(key)
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise CertificateError(
            f"the issuer Secret's {key} is not base64-encoded PEM",
            hint="give the --identity-*-file flags to replace the installed identity",
        ) from None


def _stored_credentials(cluster: ClusterReader, values: Any) -> Any:
    from lacewing.install.credentials import Credentials, for_upgrade
    from lacewing.install.render import ISSUER_SECRET
    from lacewing.install.sidecar import TRUST_ROOTS_CONFIG_MAP, TRUST_ROOTS_KEY

    ns = values.namespace
    roots = cluster.get("v1", "ConfigMap", TRUST_ROOTS_CONFIG_MAP, ns)
    anchors = ((roots or {}).get("data") or {}).get(TRUST_ROOTS_KEY, "")
    if values.identity.external_issuer:  # trust-manager owns the roots: leave them out
        stored = Credentials("", None, None, "", {})
    else:
        secret = cluster.get("v1", "Secret", ISSUER_SECRET, ns)
        if secret is None:
            raise ClusterError(
                f'the identity issuer Secret "{ISSUER_SECRET}" is missing in "{ns}"',
                hint="give --identity-trust-anchors-file and the issuer files to replace it",
            )
        data = secret.get("data") or {}
        stored = Credentials(
            anchors or _decode(data, "ca.crt") or "",
            _decode(data, "tls.crt"),
            _decode(data, "tls.key"),
            "",
            {},
        )
    return for_upgrade(stored, ns)


def run_upgrade(
    options: InstallOptions, ctx: GlobalOptions, out: Output, connect: Connect = _connect
) -> int:
    from lacewing.install.render import CONFIG_MAP, render_control_plane, render_crds
    from lacewing.install.values import values_from_yaml

    if options.crds:
        values = _values(options, {"namespace": ctx.namespace})
        _print(out, render_crds(values), options.output)
        return 0
    cluster = connect(ctx)
    config = cluster.get("v1", "ConfigMap", CONFIG_MAP, ctx.namespace)
    if config is None:
        raise ClusterError(
            f'lacewing is not installed in namespace "{ctx.namespace}" (no {CONFIG_MAP})',
            hint="install it with `lacewing install | kubectl apply -f -`, or pass -L NAMESPACE",
        )
    text = (config.get("data") or {}).get("values", "")
    try:
        stored = values_from_yaml(text, f"the stored values in {CONFIG_MAP}")
    except ConfigError as exc:
        raise ClusterError(str(exc), hint="reinstall, or repair the ConfigMap") from None
    stored.setdefault("namespace", ctx.namespace)
    stored.pop("heartbeat", None)  # retired: 0.1.0 rendered a CronJob that did nothing
    values = _values(options, stored)
    if _identity_files(options).given:
        creds = _credentials(options, values)
    else:
        creds = _stored_credentials(cluster, values)
    _print(out, render_control_plane(values, creds), options.output)
    return 0


def _present(cluster: ClusterReader, doc: dict[str, Any]) -> bool:
    """The object exists and is not already being deleted."""
    live = cluster.get(doc["apiVersion"], doc["kind"], doc["metadata"]["name"])
    return live is not None and not (live.get("metadata") or {}).get("deletionTimestamp")


def run_uninstall(
    options: InstallOptions, ctx: GlobalOptions, out: Output, connect: Connect = _connect
) -> int:
    """Cluster-scoped objects, the CRDs and the namespace (which takes everything in it)."""
    from lacewing.install import credentials
    from lacewing.install.output import skeleton
    from lacewing.install.render import render_control_plane, render_crds
    from lacewing.install.values import build_values

    values = build_values(None, overrides={"namespace": ctx.namespace, "ha": True})
    creds = credentials.generate(values.namespace, values.identity.trust_domain)
    everything = render_control_plane(values, creds) + render_crds(values)
    docs = [skeleton(d) for d in everything if not d["metadata"].get("namespace")]
    if not options.ignore_cluster:
        cluster = connect(ctx)
        docs = [d for d in docs if _present(cluster, d)]
        if not docs:
            out.warn(f'lacewing is not installed (nothing found for namespace "{ctx.namespace}")')
    _print(out, docs, options.output)
    return 0


# -- click ------------------------------------------------------------------------------------

_F = Callable[..., Any]


def _manifest_options(func: _F) -> _F:
    """The flags shared by install and upgrade (applied bottom-up, so listed in reverse)."""
    decorators = [
        click.option("--crds", is_flag=True, help="Render the CustomResourceDefinitions only."),
        click.option("--ha/--no-ha", default=None, help="Highly available control plane."),
        click.option("--image", help="Control plane and proxy image (without tag)."),
        click.option("--tag", "--version", "tag", help="Image tag. [default: this CLI's version]"),
        click.option("--proxy-cpu-request", help="Proxy CPU request, e.g. 100m."),
        click.option("--proxy-cpu-limit", help="Proxy CPU limit, e.g. 1."),
        click.option("--proxy-memory-request", help="Proxy memory request, e.g. 32Mi."),
        click.option("--proxy-memory-limit", help="Proxy memory limit, e.g. 250Mi."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Set a value (repeatable), e.g. --set proxy.logLevel=debug."),
        click.option("--values", "values_files", multiple=True, metavar="FILE",
                     help="A YAML file of values (repeatable; later files win)."),
        click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml",
                     show_default=True, help="Output format."),
        click.option("--ignore-cluster", is_flag=True,
                     help="Do not contact the cluster (no CRD or namespace checks)."),
        click.option("--identity-trust-anchors-file", "trust_anchors_file", metavar="FILE",
                     help="PEM trust anchors (instead of generating one)."),
        click.option("--identity-issuer-certificate-file", "issuer_certificate_file",
                     metavar="FILE", help="PEM issuer certificate, signed by a trust anchor."),
        click.option("--identity-issuer-key-file", "issuer_key_file", metavar="FILE",
                     help="PEM private key of the issuer certificate."),
        click.option("--identity-external-issuer/--no-identity-external-issuer",
                     "external_issuer", default=None,
                     help="cert-manager manages the issuer Secret (see docs/cert-manager.md)."),
        click.option("--identity-trust-domain", "trust_domain",
                     help="Trust domain of workload identities. [default: cluster.local]"),
        click.option("--identity-issuance-lifetime", "issuance_lifetime",
                     help="Lifetime of proxy certificates. [default: 24h]"),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _options(kwargs: dict[str, Any]) -> InstallOptions:
    kwargs["sets"] = tuple(kwargs.get("sets") or ())
    kwargs["values_files"] = tuple(kwargs.get("values_files") or ())
    return InstallOptions(**kwargs)


@click.command("install")
@_manifest_options
@click.pass_obj
def install_command(g: GlobalOptions, /, **kwargs: Any) -> int:
    """Print the control plane's manifests (or with --crds its CRDs) for `kubectl apply -f -`."""
    return run_install(_options(kwargs), g, Output())


@click.command("upgrade")
@_manifest_options
@click.pass_obj
def upgrade_command(g: GlobalOptions, /, **kwargs: Any) -> int:
    """Print the installed control plane's manifests with new flags, keeping its identity."""
    return run_upgrade(_options(kwargs), g, Output())


@click.command("uninstall")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--ignore-cluster",
    is_flag=True,
    help="List every object lacewing may have created, without asking the cluster.",
)
@click.pass_obj
def uninstall_command(g: GlobalOptions, output: str, ignore_cluster: bool) -> int:
    """Print the control plane's objects for `kubectl delete -f -`."""
    options = InstallOptions(output=output, ignore_cluster=ignore_cluster)
    return run_uninstall(options, g, Output())
