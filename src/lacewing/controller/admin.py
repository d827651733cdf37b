"""The control plane's admin port: plaintext `GET /metrics`, `/ready`, `/live` for Prometheus.

Any component started through `lacewing.cli.serving.serve_until_signalled` gets one when
`$LACEWING_CONTROLLER_ADMIN_ADDR` is set (HOST:PORT, e.g. `0.0.0.0:9990`, Linkerd's admin
port): it runs next to the component's own (TLS) server, on its own listener, and is
stopped with it. `/metrics` renders the `ConnectionStats` of each `ControllerServer` the
component runs (`lacewing.controller.metrics`) and the process metrics; `/ready` and `/live`
answer 200 while it runs; each server may add paths of its own (`admin_routes`: the policy
controller's `/v1/inbound-probe`, which `lacewing check` asks). One request per connection,
answered and closed; the listener and its tasks are `ControllerServer`'s (plaintext: metrics
are not secret, and Prometheus scrapes them without a certificate).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from lacewing.controller.https import (
    AdminRoute,
    ControllerServer,
    RequestHead,
    json_response,
    read_head,
)
from lacewing.controller.metrics import render
from lacewing.proxy.metrics import process_metrics

__all__ = ["ADMIN_ADDR_ENV", "AdminServer"]

ADMIN_ADDR_ENV = "LACEWING_CONTROLLER_ADMIN_ADDR"


class AdminServer(ControllerServer):
    label = "admin"
    task_prefix = "admin-conn"
    grace = 1.0

    def __init__(self, host: str, port: int, servers: Sequence[ControllerServer]) -> None:
        super().__init__(host, port, None)
        self.servers = list(servers)
        self.routes: dict[str, AdminRoute] = {}
        for server in self.servers:
            self.routes.update(server.admin_routes())

    def metrics(self) -> str:
        lines = render((s.label, s.stats) for s in self.servers)
        return "\n".join(lines + process_metrics()) + "\n"

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(10):
            head = await read_head(reader)
        if not isinstance(head, RequestHead):
            writer.write(json_response(*head))
        elif head.method != "GET":
            writer.write(json_response(405, {"error": "only GET"}))
        elif head.path == "/metrics":
            body = self.metrics().encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
        elif head.path in ("/ready", "/live"):
            writer.write(json_response(200, {"status": "ok"}))
        elif head.path in self.routes:
            writer.write(json_response(*self.routes[head.path](head.query)))
        else:
            writer.write(json_response(404, {"error": f"no {head.path}"}))
        await writer.drain()
