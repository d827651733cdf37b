"""Which categories `check --pre` and `check` run, in which order (as Linkerd orders them)."""

from __future__ import annotations

from lacewing.healthcheck.checks.dataplane import data_plane_categories
from lacewing.healthcheck.checks.existence import LACEWING_CONFIG, LACEWING_EXISTENCE
from lacewing.healthcheck.checks.identity import LACEWING_IDENTITY, WEBHOOKS_TLS
from lacewing.healthcheck.checks.kubernetes import KUBERNETES_API, KUBERNETES_VERSION
from lacewing.healthcheck.checks.pre import PRE_KUBERNETES_SETUP
from lacewing.healthcheck.checks.versions import (
    CONTROL_PLANE_PROXY,
    CONTROL_PLANE_VERSION,
    LACEWING_VERSION,
    LATEST,
)
from lacewing.healthcheck.facts import Facts
from lacewing.healthcheck.model import Category

__all__ = ["categories"]

PRE: tuple[Category[Facts], ...] = (
    KUBERNETES_API,
    KUBERNETES_VERSION,
    PRE_KUBERNETES_SETUP,
    LACEWING_VERSION,
)

INSTALLED: tuple[Category[Facts], ...] = (
    KUBERNETES_API,
    KUBERNETES_VERSION,
    LACEWING_EXISTENCE,
    LACEWING_CONFIG,
    LACEWING_IDENTITY,
    WEBHOOKS_TLS,
    LACEWING_VERSION,
    CONTROL_PLANE_VERSION,
    CONTROL_PLANE_PROXY,
)


def categories(
    *,
    pre: bool,
    skip_version_check: bool,
    proxy: bool = False,
    data_plane_namespace: str | None = None,
) -> list[Category[Facts]]:
    """The categories to run; `skip_version_check` drops the latest-version lookups.

    `proxy` adds the data-plane categories after the control plane's, for the pods of
    `data_plane_namespace` (None: every namespace), as `linkerd check --proxy` does.
    """
    chosen = PRE if pre else INSTALLED
    if proxy and not pre:
        chosen = chosen + data_plane_categories(data_plane_namespace)
    if not skip_version_check:
        return list(chosen)
    return [_without_latest(c) for c in chosen if c is not LACEWING_VERSION]


def _without_latest(category: Category[Facts]) -> Category[Facts]:
    """Drop the checks that need the latest released version ("... is up-to-date")."""
    kept = tuple(c for c in category.checks if LATEST not in c.tags)
    return Category(category.name, kept, category.needs)
