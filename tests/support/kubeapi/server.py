"""The HTTP layer: Kubernetes API paths over aiohttp, translated into store calls.

One catch-all route parses the path the way the API server does: `/api/v1` or
`/apis/<group>/<version>`, then `[namespaces/<ns>/]<plural>[/<name>[/<subresource>]]`
(`/api/v1/namespaces/<name>` is the Namespace itself). Each request is authenticated
(bearer token), authorized (the test's denials) and mapped to a verb: GET is get, list or
watch (`?watch=1`), POST create, PUT update, PATCH patch (by Content-Type), DELETE delete or
deletecollection. Errors travel as `ApiError` and leave as `Status` bodies. Discovery
(/version, /api, /apis...) is rendered from the registry, so CRD kinds appear as soon as
their CRD exists. A watch streams JSON lines until its `timeoutSeconds`, the client going
away, or the cluster being replaced; with `allowWatchBookmarks` it sends a BOOKMARK whenever
`bookmark_interval` passes without an event. `GET .../pods/<name>:<port>/proxy/<path>` (how
`kubectl get --raw` and `lacewing check --proxy` read a pod's metrics) is answered from the URL
the test registered for that pod and port (`KubeAPI.route_pod_proxy`), 503 otherwise, as an
API server answers when it cannot reach the pod; an answer without Content-Length (viz's tap
stream) is passed on chunk by chunk as it comes, as the API server's proxy does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from tests.support.kubeapi import openapi, scale, tables
from tests.support.kubeapi.auth import TokenInfo
from tests.support.kubeapi.cluster import Cluster
from tests.support.kubeapi.errors import ApiError
from tests.support.kubeapi.resources import ResourceType
from tests.support.kubeapi.selectors import parse_field_selector, parse_label_selector
from tests.support.kubeapi.store import PATCH_TYPES

JSON = "application/json"
PUBLIC_PATHS = (["version"], ["healthz"], ["livez"], ["readyz"])
ANONYMOUS = TokenInfo("system:anonymous", ("system:unauthenticated",))
log = logging.getLogger(__name__)
Admission = Callable[[Cluster, dict[str, Any], bool, str], Awaitable[dict[str, Any]]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type=JSON)


def _error(err: ApiError) -> web.Response:
    return _json(err.status(), err.code)


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


class Request:
    """A parsed resource request: which type, namespace, name and subresource."""

    def __init__(self, rt: ResourceType, namespace: str | None, name: str | None, sub: str | None):
        self.rt, self.namespace, self.name, self.sub = rt, namespace, name, sub


def parse_resource_path(cluster: Cluster, parts: list[str]) -> Request:
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _not_found()

    def lookup(plural: str) -> ResourceType:
        rt = cluster.registry.by_plural(group, version, plural)
        if rt is None:
            raise _not_found()
        return rt

    namespace = None
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and cluster.registry.by_plural(group, version, rest[2])
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise _not_found()
    rt = lookup(rest[0])
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and not (
        (sub == "status" and rt.status_subresource)
        or (sub == "scale" and rt.scalable)
        or (sub == "token" and rt.kind == "ServiceAccount" and rt.builtin)
    ):
        raise _not_found()
    if namespace and not rt.namespaced:
        raise _not_found()
    return Request(rt, namespace, name, sub)


class ApiServer:
    """aiohttp handlers over whichever `Cluster` `current()` returns."""

    def __init__(self, current: Callable[[], Cluster], admission: Admission | None = None) -> None:
        self._current = current
        self._admission = admission
        self.app = web.Application(client_max_size=16 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        cluster = self._current()
        try:
            parts = [p for p in request.path.split("/") if p]
            header = request.headers.get("Authorization")
            if header is None and parts in PUBLIC_PATHS:
                user = ANONYMOUS  # as with anonymous auth: health and version are public
            else:
                user = cluster.auth.authenticate(header)
            if parts in (["healthz"], ["livez"], ["readyz"]):
                return web.Response(text="ok")
            pods = parts[:3] == ["api", "v1", "namespaces"] and parts[4:5] == ["pods"]
            if pods and parts[6:7] == ["proxy"] and request.method == "GET":
                return await self._pod_proxy(cluster, parts, user, request)
            if request.method == "GET":
                discovery = self._discovery(cluster, parts, request)
                if discovery is not None:
                    return _json(discovery)
            req = parse_resource_path(cluster, parts)
            verb = self._verb(request, req)
            cluster.auth.authorize(verb, req.rt.plural, req.rt.group, req.namespace, req.name, user)
            return await self._dispatch(cluster, request, req, verb, user.username)
        except ApiError as err:
            return _error(err)
        except Exception as exc:  # an emulator bug: say so in the Status, keep the trace in logs
            log.exception("kubeapi: %s %s failed", request.method, request.path)
            return _error(ApiError(500, "InternalError", f"emulator bug: {exc!r}"))

    async def _pod_proxy(
        self, cluster: Cluster, parts: list[str], user: TokenInfo, request: web.Request
    ) -> web.StreamResponse:
        namespace, target, path = parts[3], parts[5], "/".join(parts[7:])
        name, _, port_text = target.partition(":")
        cluster.auth.authorize("get", "pods/proxy", "", namespace, name, user)
        base = cluster.pod_proxy_urls.get((namespace, name, int(port_text or 80)))
        if base is None:
            raise ApiError(
                503, "ServiceUnavailable", f"error trying to reach pod {name}:{port_text}"
            )
        query = request.query_string
        url = f"{base}/{path}" + (f"?{query}" if query else "")
        # no total timeout: an answer without Content-Length (a tap) is streamed as it comes
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                passed = {k: v for k, v in request.headers.items() if k.lower().startswith("x-")}
                async with session.get(url, headers=passed) as up:
                    kind = up.headers.get("Content-Type", "text/plain")
                    if up.content_length is not None or up.status != 200:
                        body = await asyncio.wait_for(up.read(), 5)
                        return web.Response(
                            status=up.status, body=body, headers={"Content-Type": kind}
                        )
                    out = web.StreamResponse(status=up.status, headers={"Content-Type": kind})
                    out.enable_chunked_encoding()
                    await out.prepare(request)
                    try:
                        async for chunk in up.content.iter_any():
                            await out.write(chunk)
                        await out.write_eof()
                    except (ConnectionResetError, aiohttp.ClientError):
                        pass  # either end went away: the other one is closed with it
                    return out
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ApiError(
                    503, "ServiceUnavailable", f"error trying to reach pod: {exc}"
                ) from None

    @staticmethod
    def _verb(request: web.Request, req: Request) -> str:
        q = request.query
        if request.method == "GET":
            if req.name:
                return "get"
            return "watch" if q.get("watch") in ("1", "true", "True") else "list"
        verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
        if request.method not in verbs:
            raise ApiError(405, "MethodNotAllowed", f"{request.method} is not allowed")
        verb = verbs[request.method]
        if verb == "delete" and not req.name:
            return "deletecollection"
        if req.sub == "token" and verb == "create":
            return verb
        if (verb == "create") == bool(req.name):
            raise ApiError(405, "MethodNotAllowed", f"{request.method} is not allowed here")
        if verb not in req.rt.verbs:
            raise ApiError(405, "MethodNotAllowed", f"{verb} is not supported on {req.rt.plural}")
        return verb

    # ------------------------------------------------------------------ discovery

    def _discovery(self, cluster: Cluster, parts: list[str], request: web.Request) -> Any:
        reg = cluster.registry
        if parts in (["version"], ["version", ""]):
            return cluster.version_info()
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}
                ],
            }
        if parts == ["api", "v1"]:
            return _resource_list("v1", reg.in_group_version("", "v1"))
        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_group(g, vs) for g, vs in reg.groups().items()],
            }
        if len(parts) == 2 and parts[0] == "apis":
            versions = reg.groups().get(parts[1])
            if versions is None:
                raise _not_found()
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(parts[1], versions)}
        if len(parts) == 3 and parts[0] == "apis":
            types = reg.in_group_version(parts[1], parts[2])
            if not types:
                raise _not_found()
            return _resource_list(f"{parts[1]}/{parts[2]}", types)
        if parts == ["openapi", "v3"]:
            return openapi.root(reg)
        if parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            group, version = ("", parts[3]) if parts[2] == "api" else (parts[3], parts[-1])
            doc = (
                openapi.group_version(reg, group, version)
                if len(parts) == 4 + (parts[2] == "apis")
                else None
            )
            if doc is None:
                raise _not_found()
            return doc
        if parts[:1] == ["openapi"]:
            raise _not_found()
        return None

    # ------------------------------------------------------------------ resources

    async def _dispatch(
        self, cluster: Cluster, request: web.Request, req: Request, verb: str, username: str
    ) -> web.StreamResponse:
        store, rt, q = cluster.store, req.rt, request.query
        dry_run = q.get("dryRun") == "All"
        manager = (
            q.get("fieldManager") or request.headers.get("User-Agent", "unknown").split("/")[0]
        )
        ns = req.namespace if rt.namespaced else None
        if req.sub == "scale":
            return await self._scale(cluster, request, req, verb, dry_run, manager)
        if req.sub == "token":
            assert req.name is not None and ns is not None
            store.get(rt, ns, req.name)  # 404 for a missing ServiceAccount
            body = await self._body(request, verb)
            return _json(cluster.auth.token_request(ns, req.name, body), 201)
        if verb == "get":
            assert req.name is not None
            return self._object(cluster, request, rt, store.get(rt, ns, req.name))
        if verb in ("list", "deletecollection"):
            labels = parse_label_selector(q.get("labelSelector"))
            fields = parse_field_selector(q.get("fieldSelector"), rt.kind)
            items, rv = store.list(rt, ns, labels, fields)
            if verb == "deletecollection":
                for item in items:
                    meta = item["metadata"]
                    store.delete(rt, meta.get("namespace"), meta["name"], dry_run, graceful=True)
            items, list_meta = _page(items, q.get("limit"), q.get("continue"))
            if tables.wants_table(request.headers.get("Accept", "")):
                columns = tables.crd_columns(store.crd_of(rt), rt.version)
                table = tables.to_table(rt.kind, items, store.clock(), str(rv), columns)
                table["metadata"].update(list_meta)
                return _json(table)
            return _json(
                {
                    "kind": f"{rt.kind}List",
                    "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(rv), **list_meta},
                    "items": items,
                }
            )
        if verb == "watch":
            return await self._watch(cluster, request, rt, ns)
        body = await self._body(request, verb)
        if verb == "create" and rt.kind == "Pod" and rt.builtin and self._admission is not None:
            meta = {"namespace": ns, **(body.get("metadata") or {})}
            body = await self._admission(cluster, {**body, "metadata": meta}, dry_run, username)
        # No awaits below: field_validation holds the store's (thread) lock.
        with store.field_validation(q.get("fieldValidation") == "Strict"):
            return self._write(cluster, request, req, verb, body, manager)

    def _write(
        self,
        cluster: Cluster,
        request: web.Request,
        req: Request,
        verb: str,
        body: Any,
        manager: str,
    ) -> web.Response:
        store, rt, q = cluster.store, req.rt, request.query
        dry_run = q.get("dryRun") == "All"
        ns = req.namespace if rt.namespaced else None
        if verb == "create":
            if not rt.persisted:
                return _json(self._review(cluster, rt, body), 201)
            return _json(store.create(rt, ns, body, dry_run, manager), 201)
        assert req.name is not None
        if verb == "update":
            return _json(store.replace(rt, ns, req.name, body, dry_run, req.sub, manager))
        if verb == "patch":
            kind = PATCH_TYPES.get(request.content_type)
            if kind is None:
                raise ApiError(
                    415, "UnsupportedMediaType", f"unsupported patch type {request.content_type}"
                )
            force = q.get("force") in ("true", "1")
            if kind == "apply" and not q.get("fieldManager"):
                raise ApiError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                    "is required for apply patch",
                )
            return _json(
                store.patch(rt, ns, req.name, kind, body, dry_run, req.sub, manager, force)
            )
        options = body if isinstance(body, dict) else {}
        dry_run = dry_run or "All" in (options.get("dryRun") or [])
        policy = q.get("propagationPolicy") or options.get("propagationPolicy")
        return _json(store.delete(rt, ns, req.name, dry_run, policy == "Orphan", graceful=True))

    async def _scale(
        self,
        cluster: Cluster,
        request: web.Request,
        req: Request,
        verb: str,
        dry_run: bool,
        manager: str,
    ) -> web.Response:
        store, rt, name = cluster.store, req.rt, req.name
        assert name is not None
        current = scale.to_scale(store.get(rt, req.namespace, name))
        if verb == "get":
            return _json(current)
        body = await self._body(request, verb)
        if verb == "update":
            wanted = body
        else:
            kind = PATCH_TYPES.get(request.content_type, "")
            wanted = scale.patched_scale(current, kind, body)
        change = scale.replicas_change(wanted)
        updated = store.patch(rt, req.namespace, name, "merge", change, dry_run, None, manager)
        return _json(scale.to_scale(updated))

    def _object(
        self, cluster: Cluster, request: web.Request, rt: ResourceType, obj: dict[str, Any]
    ) -> web.Response:
        if tables.wants_table(request.headers.get("Accept", "")):
            rv = obj["metadata"].get("resourceVersion", "")
            columns = tables.crd_columns(cluster.store.crd_of(rt), rt.version)
            return _json(tables.to_table(rt.kind, [obj], cluster.store.clock(), rv, columns))
        return _json(obj)

    @staticmethod
    async def _body(request: web.Request, verb: str) -> Any:
        raw = await request.read()
        if not raw:
            if verb == "delete":
                return {}
            raise ApiError.bad_request("the request body is empty")
        try:
            if request.content_type == "application/apply-patch+yaml":
                body = yaml.safe_load(raw)
            else:
                body = json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError.bad_request(f"the request body is not valid: {exc}") from None
        is_json_patch = request.content_type == "application/json-patch+json"
        if not isinstance(body, list if is_json_patch else dict):
            want = "a list of operations" if is_json_patch else "an object"
            raise ApiError.bad_request(f"the request body must be {want}")
        return body

    @staticmethod
    def _review(cluster: Cluster, rt: ResourceType, body: dict[str, Any]) -> dict[str, Any]:
        if rt.kind == "SelfSubjectAccessReview":
            return cluster.auth.access_review(body)
        return cluster.auth.token_review(body)

    async def _watch(
        self, cluster: Cluster, request: web.Request, rt: ResourceType, ns: str | None
    ) -> web.StreamResponse:
        q = request.query
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(q.get("fieldSelector"), rt.kind)
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        columns = tables.crd_columns(cluster.store.crd_of(rt), rt.version) if as_table else None
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        loop = asyncio.get_running_loop()
        timeout = float(q.get("timeoutSeconds") or 1800)
        deadline = loop.time() + timeout
        response = web.StreamResponse(headers={"Content-Type": JSON})
        await response.prepare(request)
        try:
            watch = cluster.store.watch(rt, ns, q.get("resourceVersion"), labels, fields, loop)
        except ApiError as err:
            await response.write(_line("ERROR", err.status()))
            return response
        try:
            while (remaining := deadline - loop.time()) > 0:
                wait = min(remaining, cluster.bookmark_interval if bookmarks else 1.0)
                item = await watch.next(wait)
                if item is None:
                    break
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                if not isinstance(item, tuple):  # no event within `wait`
                    if bookmarks and deadline - loop.time() > 0:
                        mark = {
                            "kind": rt.kind,
                            "apiVersion": rt.api_version,
                            "metadata": {"resourceVersion": str(cluster.store.resource_version)},
                        }
                        await response.write(_line("BOOKMARK", mark))
                    continue
                kind, obj = item
                if as_table:
                    rv = obj["metadata"]["resourceVersion"]
                    obj = tables.to_table(rt.kind, [obj], cluster.store.clock(), rv, columns)
                await response.write(_line(kind, obj))
        except ConnectionResetError:
            pass  # the client went away
        finally:
            watch.close()
        return response


def _page(
    items: list[dict[str, Any]], limit: str | None, token: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One page of a list (items come sorted by namespace and name) and its list metadata.

    The continue token is the (namespace, name) of the page's last item, base64-encoded; the
    next page starts after it in whatever the store holds then.
    """

    def position(obj: dict[str, Any]) -> list[str]:
        return [obj["metadata"].get("namespace", ""), obj["metadata"]["name"]]

    if token:
        try:
            after = json.loads(base64.urlsafe_b64decode(token.encode()))
        except ValueError:
            raise ApiError.bad_request(f'invalid continue token "{token}"') from None
        items = [i for i in items if position(i) > after]
    if not limit or not limit.isdigit() or int(limit) == 0 or len(items) <= int(limit):
        return items, {}
    page = items[: int(limit)]
    next_token = base64.urlsafe_b64encode(json.dumps(position(page[-1])).encode()).decode()
    return page, {"continue": next_token, "remainingItemCount": len(items) - len(page)}


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def _resource_list(group_version: str, types: list[ResourceType]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [e for rt in types for e in rt.discovery_entries()],
    }
