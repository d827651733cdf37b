"""viz's tap component on Kubernetes: the CLI asks it, it taps the proxies, it relays the events.

On Kubernetes the CLI holds no certificate of the mesh, and only the tap identity
(`tap.lacewing-viz.serviceaccount.identity.lacewing.<trust domain>`) passes the proxies' default
tap policy. So the tap component, a pod of service account `tap` in `lacewing-viz`, gets that
identity's certificate from the identity controller as every proxy gets its own (a CSR plus its
projected service-account token), and serves one plaintext HTTP API on `TAP_RELAY_PORT`, which
the CLI reaches through the API server's pod proxy (`pods/<tap pod>:8089/proxy/tap`). The port
is also reachable from any pod, so `/tap` wants the header `TOKEN_HEADER` equal to the token
of the Secret `lacewing-viz/tap-token` (random, made by `viz install`, mounted here): who may
tap is who may read that Secret and proxy to the pod (Kubernetes RBAC), and any other request
is a 401.

    GET /tap?namespace=NS&resource=deploy/NAME[&to=deploy/X&to_namespace=&path=/p&method=GET
             &authority=a&max_rps=R&duration=S]
    GET /ready

For `/tap` it finds the running meshed pods of `resource` through the Kubernetes API (a
Deployment's `spec.selector.matchLabels`, or the pod), opens each pod's tap port (4190) on its
IP with mutual TLS (`lacewing.viz.tapclient.TapClient`, the proxy's identity checked against its
pod's service account), and answers `200 application/x-ndjson`, chunked: first
`{"tapping": [pod names]}`, then one event a line as the proxies send them (plus `pod`, and the
tapped end's `deployment`), and an empty line after 5 s without one (so a client that went away
is noticed). It ends at `duration`, when every proxy's stream ended, or when the client leaves.
A bad query is a 400, no pod a 404, a proxy or the API refusing a 502; each one JSON line
`{"error": "..."}`, which `viz tap` prints.

`TapQuery` (parse, `params`) is shared with the CLI, which builds the same query; nothing here
but `RelayServer` does I/O.
"""

from __future__ import annotations

import hmac
import http.server
import json
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lacewing.errors import LacewingError, RuntimeEnvError, UsageError
from lacewing.viz.tap import parse_target, tap_filter
from lacewing.viz.tapclient import TAP_PORT, TapClient

__all__ = [
    "HEARTBEAT",
    "TAP_RELAY_PORT",
    "TOKEN_HEADER",
    "TOKEN_KEY",
    "TOKEN_SECRET",
    "RelayServer",
    "TapQuery",
    "TappedPod",
    "tapped_pods",
]

TAP_RELAY_PORT = 8089  # Linkerd's tap API port
TOKEN_HEADER = "X-Lacewing-Tap-Token"
TOKEN_SECRET = "tap-token"  # in lacewing-viz
TOKEN_KEY = "token"
HEARTBEAT = 5.0
PROXY_CONTAINER = "lacewing-proxy"


@dataclass(frozen=True)
class TapQuery:
    resource: str
    namespace: str = "default"
    to: str | None = None
    to_namespace: str | None = None
    path: str | None = None
    method: str | None = None
    authority: str | None = None
    max_rps: float | None = None
    duration: float | None = None

    def params(self) -> dict[str, str]:
        return {
            f.name: str(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        }

    @classmethod
    def parse(cls, query: str) -> TapQuery:
        """From a query string; one line of reason (UsageError) for anything wrong."""
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in pairs:
            if key not in known:
                raise UsageError(f"unknown tap parameter {key!r}")
            if key in values:
                raise UsageError(f"tap parameter {key!r} given twice")
            values[key] = value
        if "resource" not in values:
            raise UsageError("the tap parameter 'resource' is required (deploy/NAME or pod/NAME)")
        for key in ("max_rps", "duration"):
            if key in values:
                try:
                    number = float(values[key])
                except ValueError:
                    raise UsageError(
                        f"tap parameter {key!r}: {values[key]!r} is not a number"
                    ) from None
                if not number > 0:
                    raise UsageError(f"tap parameter {key!r} must be positive")
                values[key] = number
        parse_target(values["resource"], "resource")
        if values.get("to"):
            parse_target(values["to"], "to")
        return cls(**values)


@dataclass(frozen=True)
class TappedPod:
    name: str
    ip: str
    identity: str  # the proxy's, from the pod's service account
    deployment: str | None


def _running_meshed(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    containers = (pod.get("spec") or {}).get("containers") or []
    return (
        status.get("phase") == "Running"
        and bool(status.get("podIP"))
        and any(c.get("name") == PROXY_CONTAINER for c in containers)
    )


def tapped_pods(cluster: Any, query: TapQuery, trust_domain: str) -> list[TappedPod]:
    """The running meshed pods of the query's resource, from the Kubernetes API."""
    from lacewing.core.identity import Identity

    kind, name = parse_target(query.resource, "resource")
    deployment: str | None = None
    if kind == "deployment":
        found = cluster.get("apps/v1", "Deployment", name, query.namespace)
        if found is None:
            return []
        labels = ((found.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = cluster.list("v1", "Pod", namespace=query.namespace, label_selector=selector)
        deployment = name
    else:
        one = cluster.get("v1", "Pod", name, query.namespace)
        pods = [one] if one is not None else []
    out = []
    for pod in pods:
        if not _running_meshed(pod):
            continue
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        identity = Identity(query.namespace, account, trust_domain).name
        out.append(TappedPod(pod["metadata"]["name"], pod["status"]["podIP"], identity, deployment))
    return sorted(out, key=lambda p: p.name)


def _connect(ip: str) -> socket.socket:
    return socket.create_connection((ip, TAP_PORT), timeout=5)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RelayServer
    protocol_version = "HTTP/1.1"

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/ready":
            self._json(200, {"ready": True})
            return
        if path != "/tap":
            self._json(404, {"error": f"no such path {path!r}: GET /tap?resource=..."})
            return
        if not self.server.authorized(self.headers.get(TOKEN_HEADER, "")):
            self._json(401, {"error": f"tap: no valid {TOKEN_HEADER} header (the token of "
                                      f"Secret lacewing-viz/{TOKEN_SECRET})"})  # fmt: skip
            return
        try:
            tap = TapQuery.parse(query)
            pods = tapped_pods(self.server.cluster, tap, self.server.trust_domain)
        except UsageError as exc:
            self._json(400, {"error": str(exc)})
            return
        except LacewingError as exc:
            self._json(502, {"error": f"the Kubernetes API: {exc}"})
            return
        if not pods:
            self._json(404, {"error": f"no running meshed pod of {tap.resource} in namespace "
                                      f"{tap.namespace!r}"})  # fmt: skip
            return
        self._relay(tap, pods)

    def _relay(self, tap: TapQuery, pods: list[TappedPod]) -> None:
        by_name = {p.name: p for p in pods}
        client = TapClient(
            self.server.context(),
            lambda pod: self.server.connect(by_name[pod].ip),
            lambda pod: by_name[pod].identity,
        )
        wanted = tap_filter(tap.namespace, tap.to, tap.to_namespace, tap.path, tap.method,
                            tap.authority, tap.max_rps)  # fmt: skip
        started = False

        def opened() -> None:
            nonlocal started
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            started = True
            self._chunk(json.dumps({"tapping": sorted(by_name)}).encode() + b"\n")

        events = client.events(sorted(by_name), wanted, tap.duration, opened, HEARTBEAT)
        try:
            for event in events:
                if not event:
                    self._chunk(b"\n")
                    continue
                inbound = event.get("direction") == "inbound"
                own = event["destination"] if inbound else event["source"]
                deployment = by_name[str(event.get("pod"))].deployment
                if isinstance(own, dict) and deployment:
                    own.setdefault("deployment", deployment)
                self._chunk(json.dumps(event, sort_keys=True).encode() + b"\n")
            self.wfile.write(b"0\r\n\r\n")
        except RuntimeEnvError as exc:
            if not started:
                self._json(502, {"error": str(exc)})
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away: the taps close below
        finally:
            events.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class RelayServer(http.server.ThreadingHTTPServer):
    """The tap API; `context()` is the current client context of the tap identity."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        cluster: Any,
        context: Callable[[], ssl.SSLContext],
        token_file: Path,
        trust_domain: str = "cluster.local",
        connect: Callable[[str], socket.socket] = _connect,
    ) -> None:
        self.cluster = cluster
        self.context = context
        self.token_file = token_file
        self.trust_domain = trust_domain
        self.connect = connect
        super().__init__(address, _Handler)

    def authorized(self, offered: str) -> bool:
        """The offered token equals the Secret's (read each time: an update takes effect)."""
        try:
            token = self.token_file.read_text().strip()
        except OSError:
            return False
        return bool(token) and hmac.compare_digest(offered.encode(), token.encode())
