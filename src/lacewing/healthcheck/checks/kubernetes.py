"""`kubernetes-api` and `kubernetes-version`: can we talk to the cluster, and is it new enough?

"can initialize the client" resolves the kubeconfig (or in-cluster config) as kubectl does;
"can query the Kubernetes API" asks `/version`. Both are fatal: nothing after them can run
when they fail. The version check compares `(major, minor)` with `MIN_KUBERNETES`.
"""

from __future__ import annotations

from lacewing.healthcheck.facts import Facts
from lacewing.healthcheck.model import Category, Check, Outcome

__all__ = ["KUBERNETES_API", "KUBERNETES_VERSION", "MIN_KUBERNETES"]

MIN_KUBERNETES = (1, 28)

KUBECONFIG_HINT = (
    "check the kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and its context (--context)"
)


def can_initialize_client(facts: Facts) -> Outcome:
    facts.cluster()
    return Outcome.ok()


def can_query_api(facts: Facts) -> Outcome:
    facts.server_version()
    return Outcome.ok()


def minimum_version(facts: Facts) -> Outcome:
    major, minor = facts.server_version()
    if (major, minor) < MIN_KUBERNETES:
        want = ".".join(map(str, MIN_KUBERNETES))
        return Outcome.fail(
            f"Kubernetes is on version [{major}.{minor}], "
            f"but version [{want}] or more recent is required"
        )
    return Outcome.ok()


KUBERNETES_API: Category[Facts] = Category(
    "kubernetes-api",
    (
        Check("can initialize the client", KUBECONFIG_HINT, can_initialize_client, fatal=True),
        Check(
            "can query the Kubernetes API",
            "check that the API server is up and reachable from here: kubectl version",
            can_query_api,
            fatal=True,
        ),
    ),
)

KUBERNETES_VERSION: Category[Facts] = Category(
    "kubernetes-version",
    (
        Check(
            "is running the minimum Kubernetes API version",
            "upgrade the cluster to Kubernetes 1.28 or newer",
            minimum_version,
            fatal=True,
        ),
    ),
    needs=("kubernetes-api",),
)
