"""The dashboard of the viz install, reached through the Kubernetes API server (`viz dashboard`).

`viz install` runs the dashboard in the cluster (the `web` Deployment of `lacewing-viz`,
`lacewing.viz.install_components`). A browser cannot authenticate to the API server itself,
so `viz dashboard` listens on 127.0.0.1 here, as `kubectl port-forward` would, and
`Forward(cluster, pod).handle(target)` passes each GET to the web pod through the API
server's pod proxy (`/api/v1/namespaces/lacewing-viz/pods/<web pod>:8084/proxy/<target>`,
with the kubeconfig's credentials), answering with the pod's status, type and body. The page
asks relative URLs only, so it works under that prefix too. An API server that cannot be
reached, or refuses, is a 502 with one line (the page shows it and keeps polling).
`/api/tap`, the web pod's live tap, is passed on as it comes (`Streamed`): closing it (the
browser went away) closes the stream to the pod, which then stops its tap.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from lacewing.errors import LacewingError
from lacewing.viz.dashboard.tap import Streamed

__all__ = ["Forward", "web_pod"]

NAMESPACE = "lacewing-viz"
WEB_SELECTOR = "app.kubernetes.io/name=web,app.kubernetes.io/part-of=lacewing-viz"


def web_pod(cluster: Any) -> str | None:
    """The name of a running, ready web pod of the viz install, if any."""
    for pod in cluster.list("v1", "Pod", namespace=NAMESPACE, label_selector=WEB_SELECTOR):
        status = pod.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if status.get("phase") == "Running" and ready:
            return str(pod["metadata"]["name"])
    return None


class Forward:
    def __init__(self, cluster: Any, pod: str, port: int) -> None:
        self.cluster = cluster
        self.pod = pod
        self.port = port

    @property
    def where(self) -> str:
        return f"{NAMESPACE}/{self.pod}:{self.port} through the API server at {self.cluster.server}"

    def answer(self, target: str) -> tuple[int, str, bytes] | Streamed:
        path, _, query = target.partition("?")
        if path != "/api/tap":
            return self.handle(target)
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        stack = ExitStack()
        try:
            answer = stack.enter_context(
                self.cluster.pod_proxy_open(NAMESPACE, self.pod, self.port, path, params)
            )
            if answer.status_code != 200:
                with stack:
                    kind = answer.headers.get("Content-Type", "application/json")
                    return answer.status_code, kind, answer.read()
        except LacewingError as exc:
            stack.close()
            error = {"error": f"the dashboard pod {NAMESPACE}/{self.pod}: {exc}"}
            return 502, "application/json", json.dumps(error).encode()
        kind = answer.headers.get("Content-Type", "application/x-ndjson")
        return Streamed(kind, _passed_on(answer), stack.close)

    def handle(self, target: str) -> tuple[int, str, bytes]:
        path, _, query = target.partition("?")
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        try:
            with self.cluster.pod_proxy_open(NAMESPACE, self.pod, self.port, path or "/",
                                             params or None) as answer:  # fmt: skip
                body = answer.read()
                kind = answer.headers.get("Content-Type", "application/octet-stream")
                return answer.status_code, kind, body
        except LacewingError as exc:
            error = {"error": f"the dashboard pod {NAMESPACE}/{self.pod}: {exc}"}
            return 502, "application/json", json.dumps(error).encode()


def _passed_on(answer: Any) -> Iterator[bytes]:
    try:
        yield from answer.iter_raw()
    except Exception as exc:  # the stream broke: one line, then the end
        yield json.dumps({"error": f"the dashboard pod's tap stream: {exc}"}).encode() + b"\n"
