"""The tap component's query, pod selection and refusals (its relaying: the test-bed test)."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lacewing.errors import UsageError
from lacewing.viz.taprelay import TOKEN_HEADER, RelayServer, TapQuery, tapped_pods


def _pod(name: str, app: str, phase: str = "Running", meshed: bool = True) -> dict[str, Any]:
    containers = [{"name": "app"}] + ([{"name": "lacewing-proxy"}] if meshed else [])
    return {
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": containers, "serviceAccountName": "web-sa"},
        "status": {"phase": phase, "podIP": f"10.0.0.{len(name)}"},
    }


class FakeCluster:
    def __init__(self) -> None:
        self.selectors: list[str | None] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> Any:
        if kind == "Deployment" and name == "web":
            return {"spec": {"selector": {"matchLabels": {"app": "web", "tier": "front"}}}}
        if kind == "Pod" and name == "web-1":
            return _pod("web-1", "web")
        return None

    def list(self, api_version: str, kind: str, namespace: str, label_selector: str) -> Any:
        self.selectors.append(label_selector)
        return [_pod("web-2", "web"), _pod("web-1", "web"), _pod("web-3", "web", "Pending"),
                _pod("web-4", "web", meshed=False)]  # fmt: skip


def test_query_round_trip_and_refusals() -> None:
    query = TapQuery("deploy/web", "shop", path="/x", max_rps=5.0, duration=10.0)
    assert TapQuery.parse("&".join(f"{k}={v}" for k, v in query.params().items())) == query
    for text, message in [
        ("namespace=shop", "'resource' is required"),
        ("resource=deploy/web&nope=1", "unknown tap parameter 'nope'"),
        ("resource=deploy/web&resource=pod/x", "given twice"),
        ("resource=svc/web", "invalid resource 'svc/web'"),
        ("resource=deploy/web&max_rps=fast", "'max_rps': 'fast' is not a number"),
        ("resource=deploy/web&duration=-1", "'duration' must be positive"),
    ]:
        with pytest.raises(UsageError, match=message):
            TapQuery.parse(text)


def test_pods_of_a_deployment_running_and_meshed_with_their_proxy_identities() -> None:
    cluster = FakeCluster()
    pods = tapped_pods(cluster, TapQuery("deploy/web", "shop"), "example.org")
    assert cluster.selectors == ["app=web,tier=front"]
    assert [p.name for p in pods] == ["web-1", "web-2"]
    assert pods[0].identity == "web-sa.shop.serviceaccount.identity.lacewing.example.org"
    assert pods[0].deployment == "web"
    (one,) = tapped_pods(cluster, TapQuery("pod/web-1", "shop"), "cluster.local")
    assert one.deployment is None
    assert tapped_pods(cluster, TapQuery("deploy/nope", "shop"), "cluster.local") == []


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayServer]:
    token = tmp_path / "token"
    token.write_text("s3cret\n")

    def no_context() -> ssl.SSLContext:
        raise AssertionError("no proxy may be dialled in these cases")

    server = RelayServer(("127.0.0.1", 0), FakeCluster(), no_context, token)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


def _get(server: RelayServer, path: str, token: str | None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=5)  # type: ignore[misc]
    conn.request("GET", path, headers={TOKEN_HEADER: token} if token is not None else {})
    answer = conn.getresponse()
    body = json.loads(answer.read())
    conn.close()
    return answer.status, body


def test_the_relay_wants_the_token_then_a_good_query(relay: RelayServer) -> None:
    assert _get(relay, "/ready", None) == (200, {"ready": True})
    status, body = _get(relay, "/tap?resource=deploy/web&namespace=shop", None)
    assert status == 401 and "X-Lacewing-Tap-Token" in body["error"]
    assert _get(relay, "/tap?resource=deploy/web&namespace=shop", "guess")[0] == 401
    status, body = _get(relay, "/tap?resource=svc/web", "s3cret")
    assert status == 400 and "invalid resource" in body["error"]
    status, body = _get(relay, "/tap?resource=deploy/nope&namespace=shop", "s3cret")
    assert (status, body["error"]) == (
        404, "no running meshed pod of deploy/nope in namespace 'shop'"
    )  # fmt: skip
    assert _get(relay, "/other", "s3cret")[0] == 404
