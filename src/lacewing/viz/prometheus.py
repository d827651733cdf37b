"""Asking a Prometheus: its instant-query API, reached three ways.

`parse_answer(body)` (pure) turns a `/api/v1/query` answer into `(labels, value)` pairs; a
Prometheus error (`"status": "error"`) or an answer that is not one becomes `ProtocolError`
with Prometheus' own message. The transports only differ in how the GET travels:

- `HttpPrometheus(url)`: plain HTTP(S) to a URL the user gave (`--prometheus-url`);
- `NodePrometheus(node_netns)`: a local cluster's Prometheus, which listens inside the
  cluster's node namespace (see `lacewing.local.prometheus`): a thread enters the namespace
  and GETs 127.0.0.1:9090;
- `PodProxyPrometheus(get)`: the viz install's Prometheus pod through the Kubernetes API
  server's `pods/proxy` (the caller passes `Cluster.pod_proxy_get` bound to the pod), so no
  port-forward is needed.

A transport failure (refused, timeout) is `RuntimeEnvError` saying which Prometheus it was.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Protocol

from lacewing.errors import ProtocolError, RuntimeEnvError
from lacewing.local import netns
from lacewing.viz.summary import Series

__all__ = [
    "HttpPrometheus",
    "NodePrometheus",
    "PodProxyPrometheus",
    "Prometheus",
    "parse_answer",
    "query_path",
]

PORT = 9090
TIMEOUT = 10.0


class Prometheus(Protocol):
    where: str

    def query(self, promql: str, at: float | None = None) -> list[Series]: ...


def query_path(promql: str, at: float | None = None) -> str:
    """The instant query's path; `at` (Unix seconds) pins the evaluation time, else now."""
    params = {"query": promql} | ({} if at is None else {"time": f"{at:.3f}"})
    return "/api/v1/query?" + urllib.parse.urlencode(params)


def parse_answer(body: bytes | str) -> list[Series]:
    try:
        data = json.loads(body)
    except ValueError:
        raise ProtocolError(
            f"Prometheus answered something that is not JSON: {body[:80]!r}"
        ) from None
    if not isinstance(data, dict):
        raise ProtocolError("Prometheus answered something that is not a query result")
    if data.get("status") != "success":
        raise ProtocolError(f"Prometheus refused the query: {data.get('error', data)}")
    result = (data.get("data") or {}).get("result")
    if not isinstance(result, list):
        raise ProtocolError("Prometheus answered without a result vector")
    out: list[Series] = []
    for item in result:
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        value = item.get("value") or [0, "NaN"]
        out.append((labels, float(value[1])))
    return out


class HttpPrometheus:
    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.where = self.url
        self.timeout = timeout

    def query(self, promql: str, at: float | None = None) -> list[Series]:
        try:
            url = self.url + query_path(promql, at)
            with urllib.request.urlopen(url, timeout=self.timeout) as r:
                return parse_answer(r.read())
        except urllib.error.HTTPError as exc:
            return parse_answer(exc.read())  # Prometheus explains a bad query in the body
        except (OSError, ValueError) as exc:
            raise RuntimeEnvError(
                f"cannot reach Prometheus at {self.url}: {exc}",
                hint="check --prometheus-url",
            ) from None


class NodePrometheus:
    def __init__(self, node_netns: str, timeout: float = TIMEOUT) -> None:
        self.node_netns = node_netns
        self.where = f"127.0.0.1:{PORT} in {node_netns}"
        self.timeout = timeout

    def query(self, promql: str, at: float | None = None) -> list[Series]:
        def get() -> tuple[int, bytes]:
            return netns.http_get("127.0.0.1", PORT, query_path(promql, at), timeout=self.timeout)

        try:
            _, body = netns.in_netns(self.node_netns, get, timeout=self.timeout + 1)
        except OSError as exc:
            raise RuntimeEnvError(f"cannot reach the local cluster's Prometheus: {exc}") from None
        return parse_answer(body)


class PodProxyPrometheus:
    def __init__(self, get: Callable[[str], str], where: str) -> None:
        self.get = get
        self.where = where

    def query(self, promql: str, at: float | None = None) -> list[Series]:
        return parse_answer(self.get(query_path(promql, at)))
