"""`lacewing viz tap-relay`: the process of viz's tap component in the cluster (not for users).

`viz install` renders it as the `tap` Deployment of `lacewing-viz` (service account `tap`).
It reads the mesh's trust anchors from the control plane's ConfigMap through the Kubernetes
API (`--trust-roots-configmap NS/NAME`: a pod cannot mount another namespace's ConfigMap) into
`--state-dir`, asks identity for the tap identity's certificate with its projected token
(`controller.destination.tls.IdentityCertified`, as destination does; identity's
own name is in the control plane's namespace, the ConfigMap's), and only then listens:
`lacewing.viz.taprelay.RelayServer` on `--listen`, until SIGTERM or SIGINT. The certificate is
renewed in the background; each tap takes the current one. A trust-anchor rotation needs a
restart of the pod (the anchors are read once).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import click

from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import RuntimeEnvError, UsageError

__all__ = ["RelayOptions", "run_tap_relay", "tap_relay_command"]


@dataclass(frozen=True)
class RelayOptions:
    listen: str
    identity_addr: str
    identity_token_file: Path
    trust_roots_configmap: str
    state_dir: Path
    token_file: Path
    namespace: str
    service_account: str = "tap"
    trust_domain: str = "cluster.local"


def _anchors(cluster: object, ref: str, state_dir: Path) -> Path:
    from lacewing.install.sidecar import TRUST_ROOTS_KEY

    namespace, sep, name = ref.partition("/")
    if not sep or not namespace or not name:
        raise UsageError(f"--trust-roots-configmap: {ref!r} is not NAMESPACE/NAME")
    found = cluster.get("v1", "ConfigMap", name, namespace)  # type: ignore[attr-defined]
    pem = ((found or {}).get("data") or {}).get(TRUST_ROOTS_KEY)
    if not pem:
        raise RuntimeEnvError(f"tap: ConfigMap {ref} has no {TRUST_ROOTS_KEY}",
                              hint="is the control plane installed? `lacewing check`")  # fmt: skip
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / TRUST_ROOTS_KEY
    path.write_text(pem)
    return path


def run_tap_relay(options: RelayOptions, ctx: GlobalOptions, out: Output) -> int:
    from lacewing.cli.commands.controller_tls import ServingTls, serve_over
    from lacewing.controller.destination.tls import IdentityCertified
    from lacewing.core.identity import Identity, IdentityParseError, identity_service_name
    from lacewing.k8s.cluster import Cluster
    from lacewing.viz.taprelay import RelayServer

    host, sep, port = options.listen.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--listen: {options.listen!r} is not HOST:PORT")
    id_host, sep, id_port = options.identity_addr.rpartition(":")
    if not sep or not id_host or not id_port.isdigit():
        raise UsageError(f"--identity-addr: {options.identity_addr!r} is not HOST:PORT")
    try:
        identity = Identity(options.namespace, options.service_account, options.trust_domain)
    except IdentityParseError as exc:
        raise UsageError(f"--trust-domain / namespace: {exc}") from None
    cluster = Cluster.connect(ctx.kubeconfig, ctx.context)
    anchors = _anchors(cluster, options.trust_roots_configmap, options.state_dir)
    # identity serves as its own service account in the control plane's namespace
    control_plane = options.trust_roots_configmap.partition("/")[0]
    certified = IdentityCertified(
        identity,
        (id_host.strip("[]"), int(id_port)),
        identity_service_name(control_plane, options.trust_domain),
        options.identity_token_file,
        anchors,
    )
    tls = ServingTls(certified=certified)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        async def serve(_context: object) -> None:
            server = RelayServer((host.strip("[]") or "0.0.0.0", int(port)), cluster,
                                 certified.holder.client_context, options.token_file,
                                 options.trust_domain)  # fmt: skip
            runner = threading.Thread(target=server.serve_forever, name="tap-relay", daemon=True)
            runner.start()
            out.line(f"tap: serving the tap API on {options.listen}")
            out.out.flush()
            try:
                await stop.wait()
            finally:
                await asyncio.to_thread(server.shutdown)
                runner.join(timeout=5)
                server.server_close()

        await serve_over(tls, "tap", out, stop, serve)

    try:
        asyncio.run(main())
    finally:
        cluster.close()
    return 0


@click.command("tap-relay", hidden=True)
@click.option("--listen", default="0.0.0.0:8089", show_default=True)
@click.option("--identity-addr", required=True, help="HOST:PORT of the identity service.")
@click.option("--identity-token-file", required=True, type=click.Path(path_type=Path))
@click.option(
    "--trust-roots-configmap",
    default="lacewing/lacewing-identity-trust-roots",
    show_default=True,
    help="NAMESPACE/NAME of the trust anchors' ConfigMap.",
)
@click.option("--state-dir", default="/var/run/lacewing-tap", type=click.Path(path_type=Path))
@click.option(
    "--token-file",
    required=True,
    type=click.Path(path_type=Path),
    help="The token /tap requests must carry (Secret lacewing-viz/tap-token).",
)
@click.option(
    "--namespace", "pod_namespace", envvar="LACEWING_POD_NAMESPACE", default="lacewing-viz"
)
@click.option("--service-account", envvar="LACEWING_POD_SERVICE_ACCOUNT", default="tap")
@click.option("--trust-domain", default="cluster.local", show_default=True)
@click.pass_obj
def tap_relay_command(
    g: GlobalOptions,
    listen: str,
    identity_addr: str,
    identity_token_file: Path,
    trust_roots_configmap: str,
    state_dir: Path,
    token_file: Path,
    pod_namespace: str,
    service_account: str,
    trust_domain: str,
) -> int:
    """viz's tap component: taps the proxies with the tap identity for the CLI."""
    options = RelayOptions(listen, identity_addr, identity_token_file, trust_roots_configmap,
                           state_dir, token_file, pod_namespace, service_account,
                           trust_domain)  # fmt: skip
    return run_tap_relay(options, g, Output())
