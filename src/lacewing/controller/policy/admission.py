"""The policy validator: a validating admission webhook for the policy.lacewing.io resources.

How it works: `Validator.review(body)` parses an AdmissionReview v1 strictly (something that is
not one, or has no `request.uid`, gets HTTP 400 and a Kubernetes `Status`, and the API server
applies the webhook's failure policy). A DELETE, or a kind that is not a policy resource, is
allowed. Otherwise `request.object` goes through `core.policy_resources.parse_resource`, the
same parser the controller indexes with, so what the webhook admits is exactly what the
controller understands; its one-line `PolicyError` is the refusal's message:

    admission webhook "lacewing-policy-validator.lacewing.io" denied the request:
    Server shop/web-http: spec.port: 70000 is not a port number (1-65535) or a port name

A valid Server is also checked against the controller's current index (when it has one):
if it would select a (pod, port) another Server already selects, it is refused, as Linkerd's
validator does, so the older Server keeps deciding and nobody is surprised.

`ValidatorServer` serves it over HTTPS (`POST /`, `GET /ready`) with the certificate in
`--tls-dir`, reloaded when the files change (`injector.server.TlsFiles`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from lacewing.controller.https import ControllerServer, RequestHead, json_response, read_head
from lacewing.controller.injector.server import TlsFiles
from lacewing.core.policy import PolicyError
from lacewing.core.policy_index import PolicyIndex
from lacewing.core.policy_resources import GROUP, KINDS, Server, parse_resource

__all__ = ["MAX_BODY", "Validator", "ValidatorServer"]

log = logging.getLogger(__name__)

REVIEW_API_VERSION = "admission.k8s.io/v1"
MAX_BODY = 3 * 1024 * 1024
REQUEST_TIMEOUT = 10.0
Obj = dict[str, Any]


def _status(code: int, message: str, reason: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _answer(uid: str, refusal: str | None) -> tuple[int, Obj]:
    response: Obj = {"uid": uid, "allowed": refusal is None}
    if refusal is not None:
        response["status"] = {"code": 400, "reason": "Invalid", "message": refusal}
    return 200, {"apiVersion": REVIEW_API_VERSION, "kind": "AdmissionReview", "response": response}


class Validator:
    """AdmissionReview in, AdmissionReview out (see the module docstring)."""

    def __init__(self, index: Callable[[], PolicyIndex | None] = lambda: None) -> None:
        self._index = index
        self.refused = 0
        self.admitted = 0

    def review(self, body: bytes) -> tuple[int, Obj]:
        try:
            review = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return 400, _status(400, f"malformed AdmissionReview: not JSON ({exc})", "BadRequest")
        request = review.get("request") if isinstance(review, dict) else None
        if (
            not isinstance(review, dict)
            or review.get("apiVersion") != REVIEW_API_VERSION
            or review.get("kind") != "AdmissionReview"
            or not isinstance(request, dict)
            or not isinstance(request.get("uid"), str)
        ):
            message = "malformed AdmissionReview: expected admission.k8s.io/v1 with request.uid"
            return 400, _status(400, message, "BadRequest")
        uid = request["uid"]
        kind = (request.get("kind") or {}).get("kind")
        group = (request.get("kind") or {}).get("group")
        if request.get("operation") == "DELETE" or group != GROUP or kind not in KINDS:
            return _answer(uid, None)
        refusal = self._refusal(request.get("object"), request.get("namespace"))
        if refusal is None:
            self.admitted += 1
        else:
            self.refused += 1
            log.info("refused: %s", refusal)
        return _answer(uid, refusal)

    def _refusal(self, obj: object, namespace: object) -> str | None:
        if isinstance(obj, dict) and isinstance(namespace, str) and namespace:
            meta = obj.get("metadata")
            if isinstance(meta, dict) and not meta.get("namespace"):
                obj = {**obj, "metadata": {**meta, "namespace": namespace}}
        try:
            resource = parse_resource(obj)
        except PolicyError as exc:
            return str(exc)
        index = self._index()
        if isinstance(resource, Server) and index is not None:
            return _overlap(index, resource)
        return None


def _overlap(index: PolicyIndex, server: Server) -> str | None:
    for pod in index.pods:
        if pod.namespace != server.namespace or not server.selector.matches(pod.labels):
            continue
        if isinstance(server.port, int):
            port = server.port if server.port in pod.port_numbers() else None
        else:
            port = pod.named(server.port)
        if port is None:
            continue
        other = index.server_for(pod, port)
        if other is not None and other.name != server.name:
            return (
                f"Server {server.namespace}/{server.name}: spec: selects port {port} of pod "
                f"{pod.name}, which Server {other.name} already selects; Servers must not overlap"
            )
    return None


class ValidatorServer(ControllerServer):
    label = "policy validator"
    task_prefix = "policy-validator-conn"

    def __init__(
        self, validator: Validator, tls: TlsFiles, host: str = "0.0.0.0", port: int = 9443
    ) -> None:
        self.validator = validator
        super().__init__(host, port, tls.context)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            status, body = await self._respond(reader)
        writer.write(json_response(status, body))
        await writer.drain()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, Obj]:
        head = await read_head(reader)
        if not isinstance(head, RequestHead):
            return head[0], dict(head[1])
        if head.path in ("/ready", "/live"):
            return (200, {"status": "ok"}) if head.method == "GET" else (405, {"error": "use GET"})
        if head.path != "/":
            return 404, {"error": f"no such path {head.path}; POST AdmissionReviews to /"}
        if head.method != "POST":
            return 405, {"error": "POST an AdmissionReview"}
        length = head.headers.get("content-length", "")
        if not length.isdigit():
            return 411, {"error": "Content-Length is required"}
        if int(length) > MAX_BODY:
            return 413, {"error": f"the body exceeds {MAX_BODY} bytes"}
        return self.validator.review(await reader.readexactly(int(length)))
