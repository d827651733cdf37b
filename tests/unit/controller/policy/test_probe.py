"""The policy controller's identity-less probe, served on the admin port for `check`."""

from __future__ import annotations

import asyncio
import json

from lacewing.controller.admin import AdminServer
from lacewing.controller.policy import Hub, PolicyServer, index_from_objects
from lacewing.core.policy_index import PolicyConfig

POD = {
    "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
}


async def _get(port: int, target: str) -> tuple[int, dict[str, object]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_the_admin_port_answers_the_probe_before_and_after_the_first_index() -> None:
    hub = Hub()
    api = PolicyServer(hub, "127.0.0.1", 0)
    admin = AdminServer("127.0.0.1", 0, [api])
    await admin.start()
    try:
        ask = "/v1/inbound-probe?namespace=shop&pod=web-0&port=8080"
        status, body = await _get(admin.bound_port, ask)
        assert status == 503 and "no policy compiled yet" in str(body["error"])
        index, _ = index_from_objects([], [POD], [], PolicyConfig())
        hub.publish(index)
        assert await _get(admin.bound_port, ask) == (200, {
            "type": "POLICY", "server": {"kind": "default", "name": "all-unauthenticated"},
            "authorizations": 1, "routes": 0})  # fmt: skip
        status, body = await _get(admin.bound_port, ask.replace("web-0", "web-9"))
        assert (status, body["type"]) == (200, "NOT_FOUND")
        status, body = await _get(admin.bound_port, "/v1/inbound-probe?namespace=shop")
        assert status == 400 and "namespace and pod are required" in str(body["error"])
        assert (await _get(admin.bound_port, "/ready"))[0] == 200  # the usual paths stay
    finally:
        await admin.stop()
