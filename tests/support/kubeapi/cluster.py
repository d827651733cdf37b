"""One emulated cluster's state, swapped as a whole between tests.

The HTTP layer reads the current `Cluster` on every request, so replacing it (a fresh store,
fresh tokens and denials, the default version) gives the next test an empty cluster without
restarting the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.support.kubeapi.auth import Auth
from tests.support.kubeapi.resources import Registry
from tests.support.kubeapi.store import Store

DEFAULT_VERSION = (1, 31)


@dataclass
class Cluster:
    store: Store
    auth: Auth
    registry: Registry
    version: tuple[int, int] = DEFAULT_VERSION
    bookmark_interval: float = 1.0
    # webhook service (namespace, name, port) -> base URL the test serves it on
    webhook_urls: dict[tuple[str, str, int], str] = field(default_factory=dict)
    # pod (namespace, name, port) -> base URL the test serves it on, for pods/proxy
    pod_proxy_urls: dict[tuple[str, str, int], str] = field(default_factory=dict)

    @classmethod
    def fresh(cls, admin_token: str, history_window: int = 1000) -> Cluster:
        registry = Registry()
        return cls(Store(registry, history_window), Auth(admin_token), registry)

    def version_info(self) -> dict[str, str]:
        major, minor = self.version
        return {
            "major": str(major),
            "minor": str(minor),
            "gitVersion": f"v{major}.{minor}.0",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.22.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
