"""The slice of OpenAPI v3 that kubectl reads, rendered from the registry.

kubectl asks `/openapi/v3` for the list of group-versions, then fetches one group-version's
document to find out whether PATCH on a kind accepts the `fieldValidation` query parameter;
if it does, `kubectl apply` (with the default `--validate=strict`) leaves validation to the
server instead of downloading full schemas. So each document lists, per kind, the PATCH
operation of its object path with that parameter and the `x-kubernetes-group-version-kind`
extension, and no schemas. With no strategic-merge request body declared, kubectl computes
client-side apply patches from its compiled-in types (built-ins) or as JSON merge patches
(custom resources), exactly as it does against a real cluster without OpenAPI v2.
"""

from __future__ import annotations

from typing import Any

from tests.support.kubeapi.resources import Registry


def _prefix(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def root(registry: Registry) -> dict[str, Any]:
    gvs = {(rt.group, rt.version) for rt in registry.all()}
    return {
        "paths": {
            _prefix(g, v): {"serverRelativeURL": f"/openapi/v3/{_prefix(g, v)}?hash=0"}
            for g, v in sorted(gvs)
        }
    }


def group_version(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in registry.all() if (rt.group, rt.version) == (group, version)]
    if not types:
        return None
    paths: dict[str, Any] = {}
    for rt in types:
        scope = "namespaces/{namespace}/" if rt.namespaced else ""
        paths[f"/{_prefix(group, version)}/{scope}{rt.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{rt.kind}",
                "parameters": [
                    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                    {"name": "force", "in": "query", "schema": {"type": "boolean"}},
                ],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": group,
                    "version": version,
                    "kind": rt.kind,
                },
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }
