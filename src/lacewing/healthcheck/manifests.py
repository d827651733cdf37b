"""The manifests the checks compare the cluster with: what `lacewing install` would emit.

`render_for_checks(namespace)` renders `install --crds` plus `install` with default values in
`namespace`, with fresh throw-away credentials. Object names depend only on the namespace, so
these manifests also tell `lacewing check` which ClusterRoles, ServiceAccounts, CRDs and webhook
configurations an installed control plane must have. Nothing rendered here is ever stored: the
pre checks send it with `dryRun=All`.
"""

from __future__ import annotations

from typing import Any

from lacewing.install import credentials
from lacewing.install.render import render_control_plane, render_crds
from lacewing.install.values import build_values

__all__ = ["render_for_checks"]


def render_for_checks(namespace: str) -> list[dict[str, Any]]:
    values = build_values(overrides={"namespace": namespace})
    creds = credentials.generate(namespace, values.identity.trust_domain)
    return [*render_crds(values), *render_control_plane(values, creds)]
