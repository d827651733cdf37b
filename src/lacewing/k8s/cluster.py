"""A small synchronous Kubernetes client over plain dicts; the rest of lacewing uses only this.

How it works:

- `Cluster.connect` resolves the configuration as kubectl does (`kubeconfig.resolve_config`)
  and lets lightkube build an `httpx` client with the cluster's TLS settings and credentials
  (tokens, token files, client certificates, exec plugins). Everything after that is plain
  REST: lacewing works with generic resources (dicts), so there is no model class to pick.
- A (apiVersion, kind) pair is turned into a URL by finding its plural and scope: first from
  lightkube's tables of built-in kinds (no request), otherwise from API discovery
  (`/apis/<group>/<version>`), which is cached per group-version and fetched again once on a
  miss (a CRD created a moment ago).
- Every HTTP error becomes a `ClusterApiError` (a `ClusterError`) carrying the server's own
  message, status code and reason; "no answer" (refused, timeout, TLS failure) becomes
  `ClusterUnreachable`. `get` returns None for 404 and `delete` treats 404 as done.
- `apply` is server-side apply (`PATCH application/apply-patch+yaml`, a field manager, `force`),
  which creates absent objects and merges into present ones, as `kubectl apply --server-side`.
- `server_now` reads the `Date` header of a cheap request (`/version`), for the clock-skew check.

Namespaces: a namespaced object without `metadata.namespace` goes to the context's namespace
(as kubectl does); `list(..., namespace=None)` of a namespaced kind lists all namespaces.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx2 as httpx
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core import resource as lk_resource
from lightkube.core.exceptions import ConfigError as LightkubeConfigError
from lightkube.core.exceptions import LoadResourceError
from lightkube.core.resource_registry import resource_registry

from lacewing.errors import ClusterError, ClusterUnreachable
from lacewing.k8s.kubeconfig import resolve_config

__all__ = [
    "CONFIG_MAP_NAME",
    "Cluster",
    "ClusterApiError",
    "ResourceType",
    "read_control_plane_version",
]

CONFIG_MAP_NAME = "lacewing-config"
_APPLY = "application/apply-patch+yaml"
_UNREACHABLE_HINT = "check that the cluster is running and that your kubeconfig points to it"


class ClusterApiError(ClusterError):
    """The API server answered with an error status; `message` is the server's own words."""

    def __init__(
        self, message: str, *, code: int, reason: str = "", hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.reason = reason


_HINTS_BY_CODE: dict[int, str] = {
    401: "your credentials were refused: refresh the kubeconfig's token or certificate",
    403: "ask a cluster admin for the RBAC permission, or use a context that has it",
    409: "someone else changed the object at the same time; run the command again",
    422: "the object is invalid for this cluster; this is a bug if lacewing rendered it",
}


class ResourceType:
    """Where a kind lives in the API: its URL prefix, plural and scope."""

    __slots__ = ("kind", "namespaced", "plural", "prefix")

    def __init__(self, prefix: str, plural: str, namespaced: bool, kind: str) -> None:
        self.prefix = prefix
        self.plural = plural
        self.namespaced = namespaced
        self.kind = kind

    def path(self, namespace: str | None, name: str | None = None) -> str:
        parts = [self.prefix]
        if self.namespaced and namespace is not None:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        return "/".join(parts)


def _prefix(api_version: str) -> str:
    return f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"


def _builtin_type(api_version: str, kind: str) -> ResourceType | None:
    try:
        res = resource_registry.load(api_version, kind)
    except (LoadResourceError, ImportError, ValueError, AttributeError):
        return None
    if not res.__module__.startswith("lightkube.resources."):
        # lightkube's registry is process-wide: a generic resource that other code registered
        # for a custom kind must not stand in for what this server actually serves.
        return None
    info = lk_resource.api_info(res)
    namespaced = issubclass(res, lk_resource.NamespacedResource)
    return ResourceType(_prefix(api_version), info.plural, namespaced, kind)


def _status_message(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        text = response.text.strip().splitlines()
        return (text[0] if text else response.reason_phrase), response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message") or response.reason_phrase), str(body.get("reason") or "")
    return response.reason_phrase, ""


class Cluster:
    """One connection to one Kubernetes API server; see the module docstring."""

    def __init__(self, config: SingleConfig, http: httpx.Client) -> None:
        self._config = config
        self._http = http
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._discovered: dict[str, list[dict[str, Any]]] = {}

    @classmethod
    def connect(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        timeout: float = 10.0,
        environ: dict[str, str] | None = None,
    ) -> Cluster:
        """Resolve the configuration and prepare a client; sends no request yet.

        Raises `ClusterUnreachable` with a hint when there is no usable configuration.
        """
        config = resolve_config(kubeconfig, context, environ)
        params = client_adapter.ConnectionParams(timeout=httpx.Timeout(timeout))
        try:
            http = client_adapter.Client(config, params)
        except (LightkubeConfigError, OSError, ValueError) as exc:
            raise ClusterUnreachable(
                f"cannot set up a client for {config.cluster.server}: {exc}",
                hint="check the certificate and key files named in your kubeconfig",
            ) from None
        return cls(config, http)

    @property
    def server(self) -> str:
        """The API server's URL."""
        return str(self._config.cluster.server)

    @property
    def namespace(self) -> str:
        """The context's default namespace."""
        return str(self._config.namespace)

    @property
    def context_name(self) -> str:
        return str(self._config.context_name)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP ---------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            response = self._http.request(
                method, path, params=params or None, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            raise ClusterUnreachable(
                f"cannot reach the Kubernetes API at {self.server}: {exc or type(exc).__name__}",
                hint=_UNREACHABLE_HINT,
            ) from None
        except (LightkubeConfigError, OSError) as exc:  # exec plugins and token files
            raise ClusterUnreachable(
                f"cannot authenticate to {self.server}: {exc}", hint=_UNREACHABLE_HINT
            ) from None
        if response.status_code >= 400:
            message, reason = _status_message(response)
            raise ClusterApiError(
                message,
                code=response.status_code,
                reason=reason,
                hint=_HINTS_BY_CODE.get(response.status_code),
            )
        return response

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise ClusterUnreachable(
                f"{self.server} did not answer with JSON; is it a Kubernetes API server?",
                hint=_UNREACHABLE_HINT,
            ) from None
        if not isinstance(data, dict):
            raise ClusterUnreachable(f"{self.server} answered with unexpected JSON")
        return data

    # -- resource types -----------------------------------------------------------------------

    def _discover(self, api_version: str, refresh: bool) -> list[dict[str, Any]]:
        if refresh or api_version not in self._discovered:
            try:
                doc = self._json(self._send("GET", _prefix(api_version)))
            except ClusterApiError as exc:
                if exc.code != 404:
                    raise
                doc = {"resources": []}
            self._discovered[api_version] = list(doc.get("resources") or [])
        return self._discovered[api_version]

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        """Find the plural and scope of a kind; `ClusterApiError` (404) if the server lacks it."""
        key = (api_version, kind)
        found = self._types.get(key) or _builtin_type(api_version, kind)
        for refresh in (False, True):
            if found is not None:
                break
            for entry in self._discover(api_version, refresh):
                if entry.get("kind") == kind and "/" not in str(entry.get("name", "")):
                    found = ResourceType(
                        _prefix(api_version),
                        str(entry["name"]),
                        bool(entry.get("namespaced")),
                        kind,
                    )
                    break
        if found is None:
            raise ClusterApiError(
                f'the server does not serve kind "{kind}" in "{api_version}"',
                code=404,
                reason="NotFound",
                hint="if it is a lacewing kind, run `lacewing install --crds | kubectl apply -f -`",
            )
        self._types[key] = found
        return found

    def _object_type(self, obj: dict[str, Any]) -> tuple[ResourceType, str | None, str]:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not api_version or not kind or not name:
            raise ClusterError(
                "object needs apiVersion, kind and metadata.name",
                hint="this is a bug in the caller",
            )
        rtype = self.resource_type(str(api_version), str(kind))
        namespace = meta.get("namespace") or (self.namespace if rtype.namespaced else None)
        return rtype, namespace, str(name)

    # -- API ----------------------------------------------------------------------------------

    def server_version(self) -> tuple[int, int]:
        """(major, minor) of the API server; `minor` ignores vendor suffixes such as `28+`."""
        info = self._json(self._send("GET", "/version"))
        try:
            major = int(re.sub(r"\D", "", str(info.get("major", ""))))
            minor = int(re.sub(r"\D", "", str(info.get("minor", ""))))
        except ValueError:
            git = info.get("gitVersion", "")
            match = re.match(r"v?(\d+)\.(\d+)", str(git))
            if not match:
                raise ClusterUnreachable(
                    f"{self.server} did not report a Kubernetes version", hint=_UNREACHABLE_HINT
                ) from None
            major, minor = int(match[1]), int(match[2])
        return major, minor

    def server_now(self) -> datetime | None:
        """The server's clock (from the `Date` header of `/version`), or None if it sent none."""
        response = self._send("GET", "/version")
        header = response.headers.get("Date")
        if not header:
            return None
        try:
            return email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The object, or None if it does not exist (or its kind is not served)."""
        try:
            rtype = self.resource_type(api_version, kind)
            ns = namespace or (self.namespace if rtype.namespaced else None)
            return self._json(self._send("GET", rtype.path(ns, name)))
        except ClusterApiError as exc:
            if exc.code == 404:
                return None
            raise

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """All matching objects (following `continue` tokens), each with apiVersion and kind set.

        `namespace=None` lists a namespaced kind across all namespaces.
        """
        rtype = self.resource_type(api_version, kind)
        params: dict[str, str] = {"limit": "500"}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        items: list[dict[str, Any]] = []
        while True:
            page = self._json(self._send("GET", rtype.path(namespace), params=params))
            for item in page.get("items") or []:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            params["continue"] = str(token)

    def create(self, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """POST the object; `dry_run` asks the server to validate and admit it but store nothing."""
        rtype, namespace, _ = self._object_type(obj)
        params = {"dryRun": "All"} if dry_run else None
        return self._json(self._send("POST", rtype.path(namespace), params=params, body=obj))

    def apply(
        self,
        obj: dict[str, Any],
        field_manager: str = "lacewing",
        dry_run: bool = False,
        force: bool = True,
    ) -> dict[str, Any]:
        """Server-side apply: create the object or merge it into the live one."""
        rtype, namespace, name = self._object_type(obj)
        params = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        if dry_run:
            params["dryRun"] = "All"
        path = rtype.path(namespace, name)
        return self._json(self._send("PATCH", path, params=params, body=obj, content_type=_APPLY))

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete the object (dependents in the background); an absent object is not an error."""
        try:
            rtype = self.resource_type(api_version, kind)
            ns = namespace or (self.namespace if rtype.namespaced else None)
            self._send(
                "DELETE",
                rtype.path(ns, name),
                body={
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "propagationPolicy": "Background",
                },
            )
        except ClusterApiError as exc:
            if exc.code != 404:
                raise

    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str:
        """GET `path` from a pod's `port` through the API server (`pods/proxy`), as text."""
        response = self._send(
            "GET", f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{path.lstrip('/')}"
        )
        return response.text

    @contextmanager
    def pod_proxy_open(
        self,
        namespace: str,
        pod: str,
        port: int,
        path: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """GET `path` from a pod's `port` through the API server, the answer streamed (no read
        timeout: a tap is quiet between requests). Any status: the caller reads it."""
        url = f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{path.lstrip('/')}"
        timeout = httpx.Timeout(10.0, read=None)
        try:
            with self._http.stream(
                "GET", url, params=params, headers=headers, timeout=timeout
            ) as response:
                yield response
        except httpx.HTTPError as exc:
            raise ClusterUnreachable(
                f"cannot reach {pod}:{port} through the Kubernetes API at {self.server}: "
                f"{exc or type(exc).__name__}",
                hint=_UNREACHABLE_HINT,
            ) from None

    def can_i(
        self, verb: str, resource: str, group: str = "", namespace: str | None = None
    ) -> bool:
        """Whether the current user may `verb` the `resource` (a SelfSubjectAccessReview)."""
        attributes: dict[str, str] = {"verb": verb, "resource": resource, "group": group}
        if namespace:
            attributes["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        answer = self._json(self._send("POST", path, body=review))
        return bool((answer.get("status") or {}).get("allowed"))


def read_control_plane_version(cluster: Cluster, namespace: str) -> str | None:
    """The `version` recorded in the `lacewing-config` ConfigMap, or None if not installed."""
    config_map = cluster.get("v1", "ConfigMap", CONFIG_MAP_NAME, namespace)
    if config_map is None:
        return None
    version = (config_map.get("data") or {}).get("version")
    return str(version) if version else None
