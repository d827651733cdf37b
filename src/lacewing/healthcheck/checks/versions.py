"""`lacewing-version`, `control-plane-version`, `lacewing-control-plane-proxy`.

The latest released version comes from `facts.latest_version()` (see
`lacewing.healthcheck.versions`); failing to learn it is a warning, and so is every "is
up-to-date" check, because a Pi cluster behind NAT cannot know. The control plane's version is
the `version` recorded in the `lacewing-config` ConfigMap; each control-plane proxy's version is
its pod's `lacewing.io/proxy-version` label. "control plane proxies are healthy" waits (with
`--wait`) until every control-plane pod's `lacewing-proxy` container is ready.
"""

from __future__ import annotations

from lacewing.errors import LacewingError
from lacewing.healthcheck.checks import installed
from lacewing.healthcheck.facts import Facts
from lacewing.healthcheck.model import Category, Check, Outcome
from lacewing.healthcheck.versions import is_older

__all__ = ["CONTROL_PLANE_PROXY", "CONTROL_PLANE_VERSION", "LACEWING_VERSION", "LATEST"]

LATEST = "latest-version"  # tag of the checks that need the latest released version
_NEEDS_LATEST = frozenset({LATEST})

_SKIP_HINT = (
    "this machine may have no internet access; pass --skip-version-check or set "
    "LACEWING_SKIP_VERSION_CHECK=1 to skip, or LACEWING_VERSION_CHECK_URL to use a mirror"
)
_UPGRADE_CLI = "install the latest lacewing CLI (pip install -U lacewing)"
_UPGRADE_CP = "upgrade the control plane: lacewing upgrade | kubectl apply -f -"


def _latest(facts: Facts) -> str:
    try:
        return facts.latest_version()
    except LacewingError as exc:
        raise LacewingError(
            f"unable to determine the latest version: {exc.message}", hint=_SKIP_HINT
        ) from None


def can_determine_latest(facts: Facts) -> Outcome:
    facts.latest_version()
    return Outcome.ok()


def cli_up_to_date(facts: Facts) -> Outcome:
    latest = _latest(facts)
    cli = facts.options.cli_version
    if is_older(cli, latest):
        return Outcome.fail(f"is running version {cli} but the latest version is {latest}")
    return Outcome.ok()


def can_retrieve_control_plane_version(facts: Facts) -> Outcome:
    installed.control_plane_version(facts)
    return Outcome.ok()


def control_plane_up_to_date(facts: Facts) -> Outcome:
    latest = _latest(facts)
    version = installed.control_plane_version(facts)
    if is_older(version, latest):
        return Outcome.fail(f"is running version {version} but the latest version is {latest}")
    return Outcome.ok()


def control_plane_matches_cli(facts: Facts) -> Outcome:
    version = installed.control_plane_version(facts)
    cli = facts.options.cli_version
    if version != cli:
        return Outcome.fail(f"control plane running {version} but cli running {cli}")
    return Outcome.ok()


def proxies_healthy(facts: Facts) -> Outcome:
    """Linkerd's name for it; the same test as "control plane proxies hold certificates"."""
    return installed.proxies_certified(facts)


def _proxy_versions(facts: Facts) -> dict[str, str]:
    return {
        pod.get("metadata", {}).get("name", "?"): pod.get("metadata", {})
        .get("labels", {})
        .get(installed.PROXY_VERSION_LABEL, "unknown")
        for pod in installed.control_plane_pods(facts)
    }


def proxies_up_to_date(facts: Facts) -> Outcome:
    latest = _latest(facts)
    old = [
        f"{pod} ({v})" for pod, v in sorted(_proxy_versions(facts).items()) if is_older(v, latest)
    ]
    if old:
        return Outcome.fail(f"proxies older than {latest}: {', '.join(old)}")
    return Outcome.ok()


def proxies_match_cli(facts: Facts) -> Outcome:
    cli = facts.options.cli_version
    other = [f"{pod} ({v})" for pod, v in sorted(_proxy_versions(facts).items()) if v != cli]
    if other:
        return Outcome.fail(f"proxies not running cli version {cli}: {', '.join(other)}")
    return Outcome.ok()


LACEWING_VERSION: Category[Facts] = Category(
    "lacewing-version",
    (
        Check(
            "can determine the latest version",
            _SKIP_HINT,
            can_determine_latest,
            warning=True,
            tags=_NEEDS_LATEST,
        ),
        Check("cli is up-to-date", _UPGRADE_CLI, cli_up_to_date, warning=True, tags=_NEEDS_LATEST),
    ),
)

CONTROL_PLANE_VERSION: Category[Facts] = Category(
    "control-plane-version",
    (
        Check(
            "can retrieve the control plane version",
            "is lacewing installed? run `lacewing install | kubectl apply -f -`",
            can_retrieve_control_plane_version,
        ),
        Check(
            "control plane is up-to-date",
            _UPGRADE_CP,
            control_plane_up_to_date,
            warning=True,
            tags=_NEEDS_LATEST,
        ),
        Check(
            "control plane and cli versions match",
            "use the CLI that matches the control plane, or upgrade the control plane",
            control_plane_matches_cli,
            warning=True,
        ),
    ),
    needs=("kubernetes-version",),
)

CONTROL_PLANE_PROXY: Category[Facts] = Category(
    "lacewing-control-plane-proxy",
    (
        Check(
            "control plane proxies are healthy",
            "kubectl -n {namespace} describe pods;"
            " kubectl -n {namespace} logs POD -c lacewing-proxy",
            proxies_healthy,
            retry_deadline=True,
        ),
        Check(
            "control plane proxies are up-to-date",
            _UPGRADE_CP,
            proxies_up_to_date,
            warning=True,
            tags=_NEEDS_LATEST,
        ),
        Check(
            "control plane proxies and cli versions match",
            "use the CLI that matches the control plane, or upgrade the control plane",
            proxies_match_cli,
            warning=True,
        ),
    ),
    needs=("lacewing-existence",),
)
