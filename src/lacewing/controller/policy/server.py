"""The policy API: one streaming HTTP endpoint, JSON lines in the Kubernetes watch style.

    GET /v1/inbound?namespace=shop&pod=web-0&port=8080
    -> 200, then one JSON object per line, for as long as the client stays:
       {"type":"POLICY","policy":{"port":8080,"server":{"kind":"default",
         "name":"all-unauthenticated"},"protocol":"unknown","audit":false,
         "probePaths":["/ready"],"authorizations":[...]}}      (first, and on every change)
       {"type":"NOT_FOUND","error":"pod shop/web-0 is not known"}  (until it is)
       {"type":"HEARTBEAT"}                      (every `heartbeat` seconds of silence)
    GET /ready -> 200 once a source has published, else 503.
    Bad requests -> 400 with {"error": "...", "hint": "..."}.

On the component's plaintext admin port (`lacewing.controller.admin`, 9990), without a
certificate, for `lacewing check`:

    GET /v1/inbound-probe?namespace=NS&pod=POD&port=N
    -> 200 {"type": "POLICY", "server": {"kind": ..., "name": ...}, "authorizations": 2,
            "routes": 0}                     (what the stream would send first, summed up:
                                              who is authorized stays on the mTLS API)
    -> 200 {"type": "NOT_FOUND", "error": ...}    the pod is not known
    -> 503 {"error": "no policy compiled yet", ...} before the first publication

How it works: sources call `Hub.publish(index)`; the hub keeps the latest `PolicyIndex` and
wakes every stream (an asyncio.Event replaced on each publication). A stream recompiles its
(pod, port) against the new index (`PolicyIndex.port_policy`, a few dictionary lookups) and
writes the whole `PortPolicy` when it differs from what it last sent: a policy is small, so
the proxy never has to apply a diff. Nothing is sent before the first publication (the
source publishes only once every kind has been listed), so the first line is never a policy
compiled from half the cluster. The body ends with the connection (`Connection: close`);
curl, the proxy's client and any line reader handle that. Listening, TLS (mutual, with the
same in-process certificate destination uses) and the tracked stream tasks are
`lacewing.controller.https.ControllerServer`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from urllib.parse import parse_qs, urlsplit

from lacewing.controller.https import MAX_HEAD, AdminRoute, ControllerServer, json_response
from lacewing.core.policy import PortPolicy, policy_to_dict
from lacewing.core.policy_index import PolicyIndex

__all__ = ["Hub", "PolicyServer"]

_HEAD_TIMEOUT = 10.0
_HINT = "ask for /v1/inbound?namespace=NS&pod=POD&port=PORT"


class Hub:
    """The latest PolicyIndex, and a way to wait for the next one."""

    def __init__(self) -> None:
        self.index: PolicyIndex | None = None
        self.publications = 0
        self._changed = asyncio.Event()

    def publish(self, index: PolicyIndex) -> None:
        if index == self.index:
            return
        self.index = index
        self.publications += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, seen: int, timeout: float) -> bool:
        """Wait until a publication newer than `seen`; False on timeout."""
        if self.publications != seen:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
            return True
        return False


def _query(query: dict[str, list[str]]) -> tuple[str, str, int] | str:
    namespace = (query.get("namespace") or [""])[0]
    pod = (query.get("pod") or [""])[0]
    port = (query.get("port") or [""])[0]
    if not namespace or not pod:
        return "namespace and pod are required"
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"port {port!r} is not a port number from 1 to 65535"
    return namespace, pod, int(port)


class PolicyServer(ControllerServer):
    label = "policy"
    task_prefix = "policy-stream"
    grace = 0.0  # streams never end on their own: stop() cancels them at once

    def __init__(
        self,
        hub: Hub,
        host: str = "0.0.0.0",
        port: int = 8090,
        *,
        ssl_context: ssl.SSLContext | None = None,
        heartbeat: float = 10.0,
    ) -> None:
        super().__init__(host, port, ssl_context)
        self.hub, self.heartbeat = hub, heartbeat

    def admin_routes(self) -> dict[str, AdminRoute]:
        return {"/v1/inbound-probe": self.probe}

    def probe(self, query: str) -> tuple[int, dict[str, object]]:
        """One answer, summed up, for the plaintext admin port (see the module docstring)."""
        asked = _query(parse_qs(query))
        if isinstance(asked, str):
            return 400, {"error": asked, "hint": "ask /v1/inbound-probe?namespace=&pod=&port="}
        index = self.hub.index
        if index is None:
            return 503, {"error": "no policy compiled yet: the source has not listed every kind",
                         "hint": "the controller's log says which watch fails"}  # fmt: skip
        namespace, pod, port = asked
        policy = index.port_policy(namespace, pod, port)
        if policy is None:
            return 200, {"type": "NOT_FOUND", "error": f"pod {namespace}/{pod} is not known"}
        return 200, {
            "type": "POLICY",
            "server": {"kind": policy.server_kind, "name": policy.server_name},
            "authorizations": len(policy.authorizations),
            "routes": len(policy.routes),
        }

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT)
        except asyncio.LimitOverrunError:
            writer.write(json_response(431, {"error": "too big"}))
            return
        if len(head) > MAX_HEAD:
            writer.write(json_response(431, {"error": "too big"}))
            return
        method, _, rest = head.decode("latin-1").partition(" ")
        url = urlsplit(rest.partition(" ")[0])
        if method != "GET":
            writer.write(json_response(405, {"error": "only GET is served"}))
        elif url.path == "/ready":
            ready = self.hub.index is not None
            writer.write(json_response(200 if ready else 503, {"ready": ready}))
        elif url.path == "/v1/inbound":
            asked = _query(parse_qs(url.query))
            if isinstance(asked, str):
                writer.write(json_response(400, {"error": asked, "hint": _HINT}))
            else:
                await self._stream(*asked, writer)
        else:
            writer.write(json_response(404, {"error": f"no such path {url.path}", "hint": _HINT}))
        await writer.drain()

    async def _stream(
        self, namespace: str, pod: str, port: int, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        sent: PortPolicy | bool | None = False  # False: nothing sent yet; None: NOT_FOUND sent
        seen = 0
        while True:
            index = self.hub.index
            if index is not None and seen != self.hub.publications:
                seen = self.hub.publications
                current = index.port_policy(namespace, pod, port)
                if current != sent:
                    line: dict[str, object]
                    if current is None:
                        line = {"type": "NOT_FOUND", "error": f"pod {namespace}/{pod} is not known"}
                    else:
                        line = {"type": "POLICY", "policy": policy_to_dict(current)}
                    writer.write(json.dumps(line).encode() + b"\n")
                    await writer.drain()
                    sent = current
            if not await self.hub.wait(seen, self.heartbeat):
                writer.write(b'{"type":"HEARTBEAT"}\n')
                await writer.drain()
