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

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """`__version__` is read from the installed distribution on first use, not at import.

    importlib.metadata costs a sidecar proxy about 4 MB of RSS at start-up; the proxy never
    needs the version unless it reports it, so the lookup waits until someone asks.
    """
    if name != "__version__":
        raise AttributeError(f"module 'lacewing' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("lacewing")
    except PackageNotFoundError:  # a source tree that was never installed
        found = "0.0.0+unknown"
    globals()["__version__"] = found
    return found
