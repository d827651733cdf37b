"""lacewing: an ultralight service mesh for Kubernetes.

The package's top-level folders are the parts of the system:

    core/         pure domain models and ports (no I/O, no asyncio, no clients)
    proxy/        the data plane: the sidecar proxy and proxy-init
    controller/   the control plane: identity, destination, policy, proxy-injector
    tls/          shared identity and certificate code (X.509, CSRs, trust bundles)
    k8s/          the Kubernetes adapter (the only place that imports lightkube)
    install/      manifests for install/upgrade/uninstall and the shared sidecar spec
    healthcheck/  `check` categories declared as data, and the runner
    local/        the local runtime: a cluster of network namespaces on one machine
    viz/          the observability extension
    cli/          the `lacewing` command
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

try:
    __version__ = _dist_version("lacewing")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
