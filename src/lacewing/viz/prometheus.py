"""Asking a Prometheus: its instant-query API, reached three ways.

`parse_answer(body)` (pure) turns a `/api/v1/query` answer into `(labels, value)` pairs, and
`parse_range(body)` a `/api/v1/query_range` answer into `(labels, [(time, value), ...])`; a
Prometheus error (`"status": "error"`) or an answer that is not one becomes `ProtocolError`
with Prometheus' own message. The transports only differ in how the GET travels:

- `HttpPrometheus(url)`: plain HTTP(S) to a URL the user gave (`--prometheus-url`);
- `NodePrometheus(node_netns)`: a local cluster's Prometheus, which listens inside the
  cluster's node namespace (see `lacewing.local.prometheus`): a thread enters the namespace
  and GETs 127.0.0.1:9090;
- `PodProxyPrometheus(get)`: the viz install's Prometheus pod through the Kubernetes API
  server's `pods/proxy` (the caller passes `Cluster.pod_proxy_get` bound to the pod), so no
  port-forward is needed.

Each transport has `query(promql, at=None)` (an instant query, at `at` or now) and
`query_range(promql, start, end, step)`. A transport failure (refused, timeout) is
`RuntimeEnvError` saying which Prometheus it was.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from lacewing.errors import ProtocolError, RuntimeEnvError
from lacewing.local import netns
from lacewing.viz.summary import Series

RangeSeries = tuple[dict[str, str], list[tuple[float, float]]]

__all__ = [
    "HttpPrometheus",
    "NodePrometheus",
    "PodProxyPrometheus",
    "Prometheus",
    "RangeSeries",
    "parse_answer",
    "parse_range",
    "query_path",
    "range_path",
]

PORT = 9090
TIMEOUT = 10.0


class Prometheus(Protocol):
    where: str

    def query(self, promql: str, at: float | None = None) -> list[Series]: ...

    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> list[RangeSeries]: ...


def query_path(promql: str, at: float | None = None) -> str:
    """The instant query's path; `at` (Unix seconds) pins the evaluation time, else now."""
    params = {"query": promql} | ({} if at is None else {"time": f"{at:.3f}"})
    return "/api/v1/query?" + urllib.parse.urlencode(params)


def range_path(promql: str, start: float, end: float, step: float) -> str:
    params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    return "/api/v1/query_range?" + urllib.parse.urlencode(params)


def _result(body: bytes | str) -> list[Any]:
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
    return result


def parse_answer(body: bytes | str) -> list[Series]:
    out: list[Series] = []
    for item in _result(body):
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        value = item.get("value") or [0, "NaN"]
        out.append((labels, float(value[1])))
    return out


def parse_range(body: bytes | str) -> list[RangeSeries]:
    out: list[RangeSeries] = []
    for item in _result(body):
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        points = [(float(t), float(v)) for t, v in item.get("values") or []]
        out.append((labels, points))
    return out


class _Queries:
    """The two queries over one transport: a subclass says how to GET an API path."""

    where: str

    def query(self, promql: str, at: float | None = None) -> list[Series]:
        return parse_answer(self._get(query_path(promql, at)))

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[RangeSeries]:
        return parse_range(self._get(range_path(promql, start, end, step)))

    def _get(self, path: str) -> bytes | str:
        raise NotImplementedError


class HttpPrometheus(_Queries):
    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.where = self.url
        self.timeout = timeout

    def _get(self, path: str) -> bytes:
        try:
            with urllib.request.urlopen(self.url + path, timeout=self.timeout) as r:
                body: bytes = r.read()
                return body
        except urllib.error.HTTPError as exc:
            return exc.read()  # Prometheus explains a bad query in the body
        except (OSError, ValueError) as exc:
            raise RuntimeEnvError(
                f"cannot reach Prometheus at {self.url}: {exc}",
                hint="check --prometheus-url",
            ) from None


class NodePrometheus(_Queries):
    def __init__(self, node_netns: str, timeout: float = TIMEOUT) -> None:
        self.node_netns = node_netns
        self.where = f"127.0.0.1:{PORT} in {node_netns}"
        self.timeout = timeout

    def _get(self, path: str) -> bytes:
        def get() -> tuple[int, bytes]:
            return netns.http_get("127.0.0.1", PORT, path, timeout=self.timeout)

        try:
            _, body = netns.in_netns(self.node_netns, get, timeout=self.timeout + 1)
        except OSError as exc:
            raise RuntimeEnvError(f"cannot reach the local cluster's Prometheus: {exc}") from None
        return body


class PodProxyPrometheus(_Queries):
    def __init__(self, get: Callable[[str], str], where: str) -> None:
        self.get = get
        self.where = where

    def _get(self, path: str) -> str:
        return self.get(path)
