"""The tap listener over real mutual TLS on loopback: policy, filter, streaming, slow tappers."""

from __future__ import annotations

import asyncio
import json
import ssl

from tests.unit.proxy.identity.pki import Pki, issue_credentials

from lacewing.core.identity import Identity
from lacewing.proxy.exchange import Exchange
from lacewing.proxy.identity.credentials import client_context
from lacewing.proxy.identity.holder import TlsHolder
from lacewing.proxy.metrics import ProxyMetrics
from lacewing.proxy.tap.server import TapServer, default_allowed

TAP = Identity("lacewing-viz", "tap", "cluster.local")
SRV = Identity("t", "srv", "cluster.local")
CLI = Identity("t", "cli", "cluster.local")


async def _serve(pki: Pki) -> tuple[TapServer, ProxyMetrics, int]:
    holder = TlsHolder(pki.anchors_pem)
    holder.update(issue_credentials(pki, SRV))
    metrics = ProxyMetrics()
    tap = TapServer(metrics.tap, holder.listener_context, default_allowed("cluster.local"),
                    {"namespace": "t", "pod": "srv-0", "identity": SRV.name})  # fmt: skip
    server = await tap.start("127.0.0.1", 0)
    return tap, metrics, server.sockets[0].getsockname()[1]


async def _open(pki: Pki, who: Identity, port: int, body: bytes) -> tuple[
        asyncio.StreamReader, asyncio.StreamWriter]:  # fmt: skip
    context = client_context(issue_credentials(pki, who), pki.anchors_pem)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=SRV.name
    )
    writer.write(b"POST /tap HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    return reader, writer


def _requests(metrics: ProxyMetrics, paths: list[str]) -> None:
    route = metrics.route("inbound", "srv:8080", "127.0.0.1:8080",
                          (("tls", "true"), ("client_id", CLI.name)))  # fmt: skip
    for path in paths:
        ex = Exchange(route, 1.0)
        if ex.tapping():
            ex.method, ex.path = "GET", path
        ex.answered(200, 1.001)


async def _wait_tapping(metrics: ProxyMetrics) -> None:
    for _ in range(200):
        if metrics.tap.hub is not None and metrics.tap.hub.taps:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the tap never opened")


async def test_an_allowed_client_gets_the_matching_events_then_the_end() -> None:
    pki = Pki.make()
    tap, metrics, port = await _serve(pki)
    try:
        reader, writer = await _open(pki, TAP, port, b'{"path": "/x", "max": 2}')
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK") and b"application/x-ndjson" in head
        await _wait_tapping(metrics)
        _requests(metrics, ["/y", "/x/1", "/y", "/x/2", "/x/3"])
        lines = [json.loads(line) for line in (await reader.read()).splitlines()]
        assert [e.get("path") for e in lines[:2]] == ["/x/1", "/x/2"]
        assert lines[0]["source"]["identity"] == CLI.name and lines[0]["status"] == 200
        assert lines[2] == {"end": {"events": 2, "dropped": 0}} and len(lines) == 3
        writer.close()
        for _ in range(100):  # the stream ended: the tap is closed, the switch off
            if metrics.tap.hub is None:
                break
            await asyncio.sleep(0.01)
        assert metrics.tap.hub is None
    finally:
        await tap.close()


async def test_another_identity_is_refused_with_the_policy() -> None:
    pki = Pki.make()
    tap, metrics, port = await _serve(pki)
    try:
        reader, writer = await _open(pki, CLI, port, b"{}")
        answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 403 Forbidden"), answer
        body = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert body["error"] == (
            f"tap: client identity {CLI.name} is not allowed by the tap policy"
        ) and body["allowed"] == [TAP.name]
        assert metrics.tap.hub is None
        writer.close()
    finally:
        await tap.close()


async def test_a_client_without_a_mesh_certificate_fails_the_handshake() -> None:
    pki, other = Pki.make(), Pki.make()
    tap, _metrics, port = await _serve(pki)
    try:
        context = ssl.create_default_context(cadata=pki.anchors_pem)
        context.check_hostname = False
        for ctx in (context, client_context(issue_credentials(other, TAP), pki.anchors_pem)):
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=ctx, server_hostname=SRV.name
                )
                writer.write(b"POST /tap HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
                answer = await reader.read()
            except (ssl.SSLError, ConnectionError):
                answer = b""
            assert b"200 OK" not in answer, answer
    finally:
        await tap.close()


async def test_a_bad_filter_is_400_with_one_line() -> None:
    pki = Pki.make()
    tap, _metrics, port = await _serve(pki)
    try:
        reader, writer = await _open(pki, TAP, port, b'{"path": "x"}')
        answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {
            "error": "tap request: path 'x' must start with /"
        }
        writer.close()
    finally:
        await tap.close()


async def test_a_slow_tapper_loses_counted_events_and_never_blocks_the_exchanges() -> None:
    pki = Pki.make()
    tap, metrics, port = await _serve(pki)
    try:
        reader, writer = await _open(pki, TAP, port, b"{}")
        await reader.readuntil(b"\r\n\r\n")
        await _wait_tapping(metrics)
        _requests(metrics, [f"/{i}" for i in range(5000)])  # no await: the tapper reads nothing
        (hub_tap,) = metrics.tap.hub.taps
        assert len(hub_tap.queue) == 1000 and hub_tap.dropped == 4000
        got: list[dict[str, object]] = []
        while not any("dropped" in e for e in got):
            got.append(json.loads(await reader.readline()))
        events = [e for e in got if "path" in e]
        assert len(events) == 1000 and events[0]["path"] == "/0" and got[-1] == {"dropped": 4000}
        writer.close()
    finally:
        await tap.close()
