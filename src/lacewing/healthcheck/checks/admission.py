"""Is the proxy-injector reachable from the API server's side? A dry-run Pod says so.

`lacewing check` can read the webhook's Secret and its caBundle, but not whether the API server
can call the webhook: the injector's Service has no ready endpoint, its pod's proxy intercepts
the API server's TLS, a NetworkPolicy drops it... With the webhook's `failurePolicy: Ignore`,
every one of those admits Pods silently *without* the proxy. So the check asks the API server
to create (`dryRun=All`: admitted, mutated, stored nowhere) a Pod annotated
`lacewing.io/inject: enabled` in `PROBE_NAMESPACE`, and looks at what comes back: a
`lacewing-proxy` container means the webhook was called and answered; none means it was not.
The Pod's name is random, so it never collides with a real one.
"""

from __future__ import annotations

import secrets
from typing import Any

from lacewing.healthcheck.facts import Facts
from lacewing.healthcheck.model import Check, Outcome
from lacewing.install import sidecar

__all__ = ["INJECTOR_REACHABLE", "PROBE_NAMESPACE", "injection_dry_run"]

PROBE_NAMESPACE = "default"
INJECT_ANNOTATION = "lacewing.io/inject"


def _probe_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"lacewing-check-{secrets.token_hex(4)}",
            "namespace": PROBE_NAMESPACE,
            "annotations": {INJECT_ANNOTATION: "enabled"},
        },
        "spec": {"containers": [{"name": "probe", "image": "lacewing-check-probe"}]},
    }


def injection_dry_run(facts: Facts) -> Outcome:
    admitted = facts.cluster().create(_probe_pod(), dry_run=True)
    spec = admitted.get("spec") or {}
    names = {c.get("name") for key in ("containers", "initContainers") for c in spec.get(key) or []}
    if sidecar.PROXY_CONTAINER_NAME not in names:
        return Outcome.fail(
            f"a dry-run Pod annotated {INJECT_ANNOTATION}=enabled in namespace"
            f' "{PROBE_NAMESPACE}" was admitted without a {sidecar.PROXY_CONTAINER_NAME}'
            " container: the API server did not reach the proxy-injector webhook (its"
            " failurePolicy Ignore admits such pods silently)"
        )
    return Outcome.ok()


INJECTOR_REACHABLE: Check[Facts] = Check(
    "dry-run pods come back injected",
    "kubectl -n {namespace} get pods,endpoints lacewing-proxy-injector; kubectl -n {namespace}"
    " logs deploy/lacewing-proxy-injector -c proxy-injector; its port 8443 must be in"
    " proxy-init's --inbound-ports-to-ignore",
    injection_dry_run,
    retry_deadline=True,
)
