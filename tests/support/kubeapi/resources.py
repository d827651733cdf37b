"""The resource types the emulator serves, as data.

Every kind is one `ResourceType` row: group, version, kind, plural, whether it is namespaced,
its verbs and subresources. `BUILTIN_TYPES` holds the built-in kinds lacewing uses; a
`Registry` starts from those and grows a row for each CustomResourceDefinition version that is
served (and loses it when the CRD goes), which is how CRD kinds appear in discovery and become
servable the moment the CRD is created. Discovery documents are rendered from the same rows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)


@dataclass(frozen=True)
class ResourceType:
    """One servable resource: the row discovery lists and the store keys objects by."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    status_subresource: bool = False
    # Built-ins accept strategic merge patches (their merge keys are known); CRD kinds do not.
    builtin: bool = True
    categories: tuple[str, ...] = ()
    scalable: bool = False  # has the `scale` subresource (autoscaling/v1 Scale)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def persisted(self) -> bool:
        """Review kinds (SelfSubjectAccessReview, TokenReview) are answered, never stored."""
        return self.verbs != CREATE_ONLY

    def discovery_entries(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.scalable:
            entries.append(
                {
                    "name": f"{self.plural}/scale",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
        if self.kind == "ServiceAccount" and self.builtin:
            entries.append(
                {
                    "name": f"{self.plural}/token",
                    "singularName": "",
                    "namespaced": True,
                    "group": "authentication.k8s.io",
                    "version": "v1",
                    "kind": "TokenRequest",
                    "verbs": ["create"],
                }
            )
        if self.status_subresource:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return entries


def _t(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    verbs: tuple[str, ...] = ALL_VERBS,
    categories: tuple[str, ...] = (),
    scale: bool = False,
) -> ResourceType:
    return ResourceType(
        group, version, kind, plural, namespaced, short, verbs, status, True, categories, scale
    )


ALL = ("all",)
BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _t("", "v1", "Namespace", "namespaces", False, ("ns",), status=True),
    _t("", "v1", "Node", "nodes", False, ("no",), status=True),
    _t("", "v1", "Pod", "pods", short=("po",), status=True, categories=ALL),
    _t("", "v1", "Service", "services", short=("svc",), status=True, categories=ALL),
    _t("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _t("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _t("", "v1", "Secret", "secrets"),
    _t("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _t("", "v1", "Event", "events", short=("ev",)),
    _t(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short=("deploy",),
        status=True,
        categories=ALL,
        scale=True,
    ),
    _t(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short=("rs",),
        status=True,
        categories=ALL,
        scale=True,
    ),
    _t(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short=("sts",),
        status=True,
        categories=ALL,
        scale=True,
    ),
    _t("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), status=True, categories=ALL),
    _t("batch", "v1", "Job", "jobs", status=True, categories=ALL),
    _t("batch", "v1", "CronJob", "cronjobs", short=("cj",), status=True, categories=ALL),
    _t("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    _t("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _t("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _t("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _t("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _t(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        False,
    ),
    _t(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        False,
    ),
    _t(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        status=True,
    ),
    _t("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), status=True),
    _t("coordination.k8s.io", "v1", "Lease", "leases"),
    _t(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=CREATE_ONLY,
    ),
    _t("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, verbs=CREATE_ONLY),
)


def crd_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The rows a CustomResourceDefinition adds: one per served version."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    subresources_by_version = {
        v.get("name"): v.get("subresources") or spec.get("subresources") or {}
        for v in spec.get("versions", [])
    }
    return [
        ResourceType(
            group=spec["group"],
            version=v["name"],
            kind=names["kind"],
            plural=names["plural"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames", ())),
            status_subresource="status" in subresources_by_version.get(v["name"], {}),
            builtin=False,
            categories=tuple(names.get("categories", ())),
        )
        for v in spec.get("versions", [])
        if v.get("served", True)
    ]


class Registry:
    """The resource types currently servable: built-ins plus those of existing CRDs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._builtin = list(BUILTIN_TYPES)
        self._crds: dict[str, list[ResourceType]] = {}

    def all(self) -> list[ResourceType]:
        with self._lock:
            return self._builtin + [t for ts in self._crds.values() for t in ts]

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        with self._lock:
            self._crds[crd_name] = types

    def drop_crd(self, crd_name: str) -> list[ResourceType]:
        with self._lock:
            return self._crds.pop(crd_name, [])

    def by_plural(self, group: str, version: str, plural: str) -> ResourceType | None:
        for rt in self.all():
            if (rt.group, rt.version, rt.plural) == (group, version, plural):
                return rt
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self.all():
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        return None

    def groups(self) -> dict[str, list[str]]:
        """Group name -> versions, in first-seen order (the first is the preferred one)."""
        out: dict[str, list[str]] = {}
        for rt in self.all():
            if rt.group:
                versions = out.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.all() if rt.group == group and rt.version == version]
