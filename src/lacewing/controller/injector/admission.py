"""AdmissionReview v1 in, AdmissionReview v1 out: the webhook's logic without the transport.

How it works: `Admission.review(body)` parses the request strictly. Something that is not an
AdmissionReview v1 with a `request.uid` cannot be answered in kind, so it gets HTTP 400 and a
Kubernetes `Status` saying what is wrong (the API server then applies the failure policy,
Ignore: the pod is created without a proxy). A well-formed review is always answered
`allowed: true`: anything but the CREATE of a Pod or a Service passes untouched (a Service
only inherits its namespace's opaque-ports annotation, `patch.service_ops`), and for a Pod the
namespace (for its annotations) and the install values (from the `lacewing-config` ConfigMap)
are looked up, then `patch.decide` says what to do. Its `add` operations go back base64-encoded
as a JSONPatch; a skip returns the patch that records `lacewing.io/inject-skipped`.

Lookups go through `Lookup.get` (the Kubernetes adapter's `Cluster.get`, which blocks, so it
runs in a worker thread). The namespace is read for every pod: `kubectl annotate ns` followed
at once by `kubectl rollout restart` must mesh the new pods. The install values change only
on upgrade, so they are cached for `ttl` seconds of the injected `clock`. When the API cannot
be read the pod is still admitted, with the reason recorded, and the last values read stay in
use.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from lacewing.controller.injector.config import values_from_config
from lacewing.controller.injector.patch import Decision, PodInput, decide, service_ops
from lacewing.errors import LacewingError
from lacewing.install.values import Values

__all__ = ["CONFIG_MAP", "Admission", "Lookup", "Reply"]

log = logging.getLogger(__name__)

CONFIG_MAP = "lacewing-config"
REVIEW_API_VERSION = "admission.k8s.io/v1"
Obj = dict[str, Any]


class Lookup(Protocol):
    """The part of `lacewing.k8s.cluster.Cluster` the webhook needs."""

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None: ...


@dataclass(frozen=True)
class Reply:
    """An HTTP status and the JSON body to send."""

    status: int
    body: Obj


def _bad_request(message: str) -> Reply:
    status = {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": f"malformed AdmissionReview: {message}",
        "reason": "BadRequest",
        "code": 400,
    }
    return Reply(400, status)


def _allow(uid: str, decision: Decision | None = None, warning: str | None = None) -> Reply:
    response: Obj = {"uid": uid, "allowed": True}
    if decision is not None and decision.ops:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(decision.ops).encode()).decode()
    if warning:
        response["warnings"] = [warning]
    return Reply(
        200, {"apiVersion": REVIEW_API_VERSION, "kind": "AdmissionReview", "response": response}
    )


class Admission:
    def __init__(
        self,
        lookup: Lookup,
        control_plane_namespace: str,
        *,
        native_sidecar: bool = False,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self.namespace = control_plane_namespace
        self.native_sidecar = native_sidecar
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Obj | None]] = {}
        self._values: Values | None = None
        self.decisions: dict[str, int] = {}  # reason -> count, for logs and tests

    async def _get(
        self, kind: str, name: str, namespace: str | None, cache: bool = False
    ) -> Obj | None:
        key = (kind, name)
        now = self._clock()
        cached = self._cache.get(key)
        if cache and cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        found = await asyncio.to_thread(self._lookup.get, "v1", kind, name, namespace)
        if cache:
            self._cache[key] = (now, found)
        return found

    async def values(self) -> Values:
        """The install values, re-read at most every `ttl` seconds; the last good ones on error."""
        try:
            config = await self._get("ConfigMap", CONFIG_MAP, self.namespace, cache=True)
            if config is None:
                raise LacewingError(f'ConfigMap "{CONFIG_MAP}" not found in "{self.namespace}"')
            self._values = values_from_config(config, f"ConfigMap {self.namespace}/{CONFIG_MAP}")
        except LacewingError as exc:
            if self._values is None:
                raise
            log.warning("using the last install values read: %s", exc)
        return self._values

    async def review(self, body: bytes) -> Reply:
        try:
            review = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _bad_request(f"the body is not JSON ({exc})")
        if not isinstance(review, dict):
            return _bad_request("the body is not a JSON object")
        if (
            review.get("apiVersion") != REVIEW_API_VERSION
            or review.get("kind") != "AdmissionReview"
        ):
            return _bad_request(
                f"expected apiVersion {REVIEW_API_VERSION} and kind AdmissionReview"
            )
        request = review.get("request")
        if not isinstance(request, dict) or not isinstance(request.get("uid"), str):
            return _bad_request("request.uid is missing")
        uid = request["uid"]
        kind = request.get("kind")
        kind = kind if isinstance(kind, dict) else {}
        if request.get("operation") != "CREATE" or kind.get("kind") not in ("Pod", "Service"):
            return _allow(uid)
        if kind.get("kind") == "Service":
            return await self._service(uid, request.get("object"), request.get("namespace"))
        pod = request.get("object")
        if not isinstance(pod, dict):
            return _allow(uid, warning="lacewing: not injected: request.object is not a Pod")
        return await self._pod(uid, pod, str(request.get("namespace") or ""))

    async def _service(self, uid: str, service: Any, namespace: Any) -> Reply:
        if not isinstance(service, dict) or not namespace or not isinstance(namespace, str):
            return _allow(uid)
        try:
            ops = service_ops(service, await self._get("Namespace", namespace, None))
        except LacewingError as exc:
            return _allow(uid, warning=f"lacewing: opaque ports not inherited: {exc.message}")
        return _allow(uid, Decision(False, "service", "", ops) if ops else None)

    async def _pod(self, uid: str, pod: Obj, namespace: str) -> Reply:
        namespace = namespace or str((pod.get("metadata") or {}).get("namespace") or "default")
        where = f"{namespace}/{(pod.get('metadata') or {}).get('name') or '(generated)'}"
        try:
            ns = await self._get("Namespace", namespace, None)
            values = await self.values()
            decision = decide(
                PodInput(pod, ns or {"metadata": {"name": namespace}}, values, self.native_sidecar)
            )
        except LacewingError as exc:
            log.error("pod %s admitted without a proxy: %s", where, exc)
            self.decisions["error"] = self.decisions.get("error", 0) + 1
            return _allow(uid, warning=f"lacewing: not injected: {exc.message}")
        self.decisions[decision.reason] = self.decisions.get(decision.reason, 0) + 1
        log.info("pod %s: %s", where, decision.message)
        return _allow(uid, decision)
