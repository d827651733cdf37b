"""The context every check receives: facts about the cluster, built lazily and cached.

A check asks `facts.cluster()`, `facts.config_map()`, `facts.pods()`... The first call builds
the fact (connects, sends the request, parses the certificate) and remembers the value or the
`LacewingError` it raised, so twenty checks reading the `lacewing-config` ConfigMap cost one
request, and a check can be run alone, in any order.

Facts are `stable` (the connection, the server version, the latest released version, the
manifests lacewing would install) or `volatile` (pods, ReplicaSets, nodes, ConfigMaps, Secrets:
things `--wait` is waiting to change). `refresh()`, called by the runner before it retries a
check, forgets the volatile ones.

Everything with side effects is injected: how to connect (`connect`; the CLI passes
`lacewing.k8s.cluster.Cluster.connect`, which this package may not import: only `lacewing.k8s`
touches lightkube), how to render the
manifests (`render`), how to fetch the latest version (`fetch_latest`) and the wall clock
(`now`), so unit tests use fakes and integration tests the real adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from lacewing.errors import LacewingError

__all__ = ["CheckOptions", "ClusterPort", "Facts"]

T = TypeVar("T")
Obj = dict[str, Any]


class ClusterPort(Protocol):
    """The part of `lacewing.k8s.cluster.Cluster` the checks use."""

    def server_version(self) -> tuple[int, int]: ...

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None: ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]: ...

    def create(self, obj: Obj, dry_run: bool = False) -> Obj: ...

    def can_i(
        self, verb: str, resource: str, group: str = "", namespace: str | None = None
    ) -> bool: ...

    def server_now(self) -> datetime | None: ...

    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str: ...


@dataclass(frozen=True)
class CheckOptions:
    """What the user asked for, as the checks need it."""

    namespace: str = "lacewing"
    kubeconfig: str | None = None
    context: str | None = None
    cli_version: str = "0.0.0"
    version_url: str = ""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _no_render(options: CheckOptions) -> list[Obj]:
    raise LacewingError("no manifest renderer was configured")


def _no_fetch(url: str) -> str:
    raise LacewingError("no version source was configured")


@dataclass(frozen=True)
class _Raised:
    error: LacewingError


class Facts:
    """Lazily built, cached facts (see the module docstring)."""

    def __init__(
        self,
        options: CheckOptions,
        *,
        connect: Callable[[str | None, str | None], ClusterPort],
        render: Callable[[CheckOptions], list[Obj]] = _no_render,
        fetch_latest: Callable[[str], str] = _no_fetch,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.options = options
        self.now = now
        self._connect = connect
        self._render = render
        self._fetch_latest = fetch_latest
        self._memo: dict[str, object] = {}
        self._volatile: set[str] = set()

    # -- caching ----------------------------------------------------------------------------
    def cached(self, key: str, build: Callable[[], T], *, volatile: bool = False) -> T:
        """The fact `key`, built by `build` on first use (errors are remembered too)."""
        if key in self._memo:
            value = self._memo[key]
            if isinstance(value, _Raised):
                raise value.error
            return value  # type: ignore[return-value]
        if volatile:
            self._volatile.add(key)
        try:
            built = build()
        except LacewingError as exc:
            self._memo[key] = _Raised(exc)
            raise
        self._memo[key] = built
        return built

    def refresh(self) -> None:
        """Forget volatile facts so retried checks see the cluster as it is now."""
        for key in self._volatile:
            self._memo.pop(key, None)
        self._volatile.clear()

    # -- stable facts -----------------------------------------------------------------------
    def cluster(self) -> ClusterPort:
        return self.cached(
            "cluster", lambda: self._connect(self.options.kubeconfig, self.options.context)
        )

    def server_version(self) -> tuple[int, int]:
        return self.cached("server_version", lambda: self.cluster().server_version())

    def rendered(self) -> list[Obj]:
        """The manifests `lacewing install` would apply, with the current options."""
        return self.cached("rendered", lambda: self._render(self.options))

    def latest_version(self) -> str:
        return self.cached("latest", lambda: self._fetch_latest(self.options.version_url))

    # -- volatile facts ---------------------------------------------------------------------
    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        key = f"get:{api_version}:{kind}:{namespace}:{name}"
        return self.cached(
            key,
            lambda: self.cluster().get(api_version, kind, name, namespace),
            volatile=True,
        )

    def pod_text(self, namespace: str, pod: str, port: int, path: str) -> str:
        """A pod's HTTP answer through the API server (a proxy's /metrics on its admin port)."""
        key = f"pod:{namespace}:{pod}:{port}:{path}"
        return self.cached(
            key, lambda: self.cluster().pod_proxy_get(namespace, pod, port, path), volatile=True
        )

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        key = f"list:{api_version}:{kind}:{namespace}:{label_selector}"
        return self.cached(
            key,
            lambda: self.cluster().list(api_version, kind, namespace, label_selector),
            volatile=True,
        )
