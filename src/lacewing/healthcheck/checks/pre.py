"""`pre-kubernetes-setup`: may this user install lacewing on this cluster?

The "can create ..." checks test the manifests `lacewing install` would really apply
(`facts.rendered()`), by server-side dry-run (`dryRun=All`): the API server authorizes,
validates and admits each object and stores nothing. Cluster-scoped objects (the Namespace,
CRDs, ClusterRoles, bindings, webhook configurations) are dry-run as they are. Namespaced objects
cannot be dry-run into the control plane namespace, which does not exist yet (the API server
would answer "namespace not found"), so each check first asks a SelfSubjectAccessReview for
`create` in that namespace, then dry-runs the rendered objects into `default` to prove the
server accepts them. The kinds are a table (`NAMESPACED_KINDS`), one check per row.

"nodes run a supported architecture" reads each Node's `status.nodeInfo.architecture`. The one
image is built for `SUPPORTED_ARCHITECTURES` (amd64, arm64). 32-bit ARM (`arm`: Raspberry Pi OS
32-bit, armv7) is not supported: the proxy's uvloop and httptools publish no armv7 wheels (only
cryptography does), so neither an image nor `pip install` gets them without a compiler. No
supported node at all fails; some unsupported nodes is a warning (meshed pods scheduled there
cannot start: pin them with a `kubernetes.io/arch` nodeSelector).

"no clock skew detected" compares the API server's `Date` header with this machine's clock;
certificates issued by a skewed identity service look "not yet valid" to proxies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lacewing.errors import ClusterError
from lacewing.healthcheck.facts import Facts
from lacewing.healthcheck.model import Category, Check, Outcome

__all__ = [
    "MAX_CLOCK_SKEW",
    "NAMESPACED_KINDS",
    "PRE_KUBERNETES_SETUP",
    "SUPPORTED_ARCHITECTURES",
    "node_architectures",
]

MAX_CLOCK_SKEW = timedelta(minutes=5)
DRY_RUN_NAMESPACE = "default"
ALREADY_EXISTS = 409
SUPPORTED_ARCHITECTURES = ("amd64", "arm64")
_ARCH_NAMES = {"arm": "arm (32-bit ARM, armv7)", "386": "386 (32-bit x86)"}


@dataclass(frozen=True)
class Kind:
    plural_title: str  # as shown: "can create ServiceAccounts"
    api_version: str
    kind: str
    resource: str
    group: str


NAMESPACED_KINDS: tuple[Kind, ...] = (
    Kind("ServiceAccounts", "v1", "ServiceAccount", "serviceaccounts", ""),
    Kind("Services", "v1", "Service", "services", ""),
    Kind("Deployments", "apps/v1", "Deployment", "deployments", "apps"),
    Kind("ConfigMaps", "v1", "ConfigMap", "configmaps", ""),
    Kind("Secrets", "v1", "Secret", "secrets", ""),
)


def _name(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}"


def namespace_absent(facts: Facts) -> Outcome:
    ns = facts.options.namespace
    if facts.get("v1", "Namespace", ns) is not None:
        return Outcome.fail(
            f'The "{ns}" namespace already exists',
            hint="lacewing may be installed already: run `lacewing check`, or `lacewing upgrade`;"
            " or install into another namespace with -L",
        )
    return Outcome.ok()


def can_create_cluster_scoped(facts: Facts) -> Outcome:
    objects = [o for o in facts.rendered() if not o.get("metadata", {}).get("namespace")]
    if not objects:
        return Outcome.fail("the install manifests contain no cluster-scoped resources")
    for obj in objects:
        _dry_run_create(facts, _without_status(obj))
    return Outcome.ok()


def _dry_run_create(facts: Facts, obj: dict[str, Any]) -> None:
    """Dry-run create; "already exists" (409) passes: the server authorized and admitted it
    before it found the conflict (e.g. the CRDs were applied before `check --pre`)."""
    try:
        facts.cluster().create(obj, dry_run=True)
    except ClusterError as exc:
        if getattr(exc, "code", None) != ALREADY_EXISTS:
            raise


def _without_status(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "status"}


def _retarget(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    copy = _without_status(obj)
    copy["metadata"] = {**obj.get("metadata", {}), "namespace": namespace}
    return copy


def can_create(kind: Kind) -> Callable[[Facts], Outcome]:
    def check(facts: Facts) -> Outcome:
        ns = facts.options.namespace
        cluster = facts.cluster()
        if not cluster.can_i("create", kind.resource, kind.group, ns):
            return Outcome.fail(
                f'not allowed to create {kind.resource} in namespace "{ns}"',
                hint="ask a cluster administrator to install lacewing, or for "
                f"`create` on {kind.resource} (kubectl auth can-i create {kind.resource} -n {ns})",
            )
        for obj in facts.rendered():
            if obj.get("kind") == kind.kind and obj.get("apiVersion") == kind.api_version:
                _dry_run_create(facts, _retarget(obj, DRY_RUN_NAMESPACE))
        return Outcome.ok()

    return check


def can_read_secrets(facts: Facts) -> Outcome:
    ns = facts.options.namespace
    cluster = facts.cluster()
    denied = [v for v in ("get", "list") if not cluster.can_i(v, "secrets", "", ns)]
    if denied:
        return Outcome.fail(f'not allowed to {" or ".join(denied)} secrets in namespace "{ns}"')
    return Outcome.ok()


def can_read_extension_apiserver_authentication(facts: Facts) -> Outcome:
    name = "extension-apiserver-authentication"
    if facts.cluster().get("v1", "ConfigMap", name, "kube-system") is None:
        return Outcome.fail(f"ConfigMap kube-system/{name} was not found")
    return Outcome.ok()


def _architectures(facts: Facts) -> dict[str, str]:
    """Node name -> `status.nodeInfo.architecture` ("" when the kubelet did not say)."""
    return {
        str((node.get("metadata") or {}).get("name")): str(
            ((node.get("status") or {}).get("nodeInfo") or {}).get("architecture") or ""
        )
        for node in facts.list("v1", "Node")
    }


def _unsupported(nodes: dict[str, str]) -> tuple[dict[str, str], str]:
    unsupported = {n: a for n, a in nodes.items() if a not in SUPPORTED_ARCHITECTURES}
    listed = "\n".join(
        f"node {n} is {_ARCH_NAMES.get(a, a or 'of an unknown architecture')}"
        for n, a in sorted(unsupported.items())
    )
    return unsupported, listed


def node_architectures(facts: Facts) -> Outcome:
    """Fails when no node can run the image (amd64, arm64)."""
    nodes = _architectures(facts)
    if not nodes:
        return Outcome.fail("the cluster has no nodes to run lacewing on")
    unsupported, listed = _unsupported(nodes)
    if len(unsupported) == len(nodes):
        supported = ", ".join(SUPPORTED_ARCHITECTURES)
        return Outcome.fail(f"{listed}\nlacewing runs on {supported} only")
    return Outcome.ok()


def every_node_architecture(facts: Facts) -> Outcome:
    """A warning when some (not all) nodes cannot run the image."""
    nodes = _architectures(facts)
    unsupported, listed = _unsupported(nodes)
    if unsupported and len(unsupported) < len(nodes):
        return Outcome.fail(f"{listed}\nmeshed pods scheduled there cannot start")
    return Outcome.ok()


_ARCH_HINT = (
    "lacewing runs on amd64 and arm64: 32-bit Raspberry Pi OS (armv7) is not supported (uvloop"
    " and httptools ship no armv7 wheels); install the 64-bit Raspberry Pi OS on the Pis"
)


def no_clock_skew(facts: Facts) -> Outcome:
    server = facts.cluster().server_now()
    if server is None:
        return Outcome.fail("the API server sent no Date header; cannot measure clock skew")
    skew = abs(server - facts.now())
    if skew > MAX_CLOCK_SKEW:
        return Outcome.fail(
            f"clock skew between this machine and the API server is {int(skew.total_seconds())}s"
            f" (more than {int(MAX_CLOCK_SKEW.total_seconds())}s)"
        )
    return Outcome.ok()


_RBAC_HINT = "ask a cluster administrator to install lacewing (cluster-admin is needed)"

PRE_KUBERNETES_SETUP: Category[Facts] = Category(
    "pre-kubernetes-setup",
    (
        Check(
            "control plane namespace does not already exist",
            "run `lacewing upgrade`, or choose another namespace with -L",
            namespace_absent,
        ),
        Check("can create non-namespaced resources", _RBAC_HINT, can_create_cluster_scoped),
        *(
            Check(f"can create {k.plural_title}", _RBAC_HINT, can_create(k))
            for k in NAMESPACED_KINDS
        ),
        Check("can read Secrets", _RBAC_HINT, can_read_secrets),
        Check(
            "can read extension-apiserver-authentication configmap",
            "the identity service needs to read kube-system/extension-apiserver-authentication;"
            " ask a cluster administrator for read access",
            can_read_extension_apiserver_authentication,
        ),
        Check("nodes run a supported architecture", _ARCH_HINT, node_architectures),
        Check(
            "every node runs a supported architecture",
            "keep the control plane and meshed workloads off those nodes (a kubernetes.io/arch"
            " nodeSelector), or move them to a 64-bit OS",
            every_node_architecture,
            warning=True,
        ),
        Check(
            "no clock skew detected",
            "synchronize the clocks of this machine and the cluster's nodes (NTP)",
            no_clock_skew,
            warning=True,
        ),
    ),
    needs=("kubernetes-version",),
)
