"""The sidecar proxy in network-namespace pods, as a user would see it.

One node for the module: `client` and `server` are meshed (proxy-init + `lacewing proxy` as
uid 2102 beside the app); `outsider` is not meshed and reaches the server's inbound proxy
directly. Port 2525 is opaque on both proxies (a server-speaks-first protocol); 7000 is a raw
TCP echo that the proxies must detect as not-HTTP. The /shutdown test builds its own node.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from tests.support.netns import Cluster, Pod, Proc, http_get, ws
from tests.support.netns.apps import BANNER, CHUNK, pattern
from tests.support.netns.clients import Conn, send_in_background
from tests.support.netns.scrape import scrape, total

pytestmark = pytest.mark.root

PROXY_UID = 2102
HUNDRED_MB = 100 * 1024 * 1024
RSS_GROWTH_LIMIT_KIB = 40 * 1024


@dataclass
class Mesh:
    client: Pod
    server: Pod
    outsider: Pod
    client_proxy: Proc
    server_proxy: Proc

    def url(self, path: str, port: int = 8080) -> str:
        return f"http://{self.server.ip}:{port}{path}"

    def assert_serving(self) -> None:
        """A plain request from the client still gets through both proxies, quickly."""
        started = time.monotonic()
        result = self.client.curl("-o", "/dev/null", "-w", "%{http_code}", self.url("/"))
        assert result.stdout == b"200", result.stderr
        assert time.monotonic() - started < 5
        assert self.client_proxy.alive() and self.server_proxy.alive()


@pytest.fixture(scope="module")
def mesh(netns_module_cluster: Cluster) -> Mesh:
    cluster = netns_module_cluster
    client, server = cluster.add_pod("client"), cluster.add_pod("server")
    outsider = cluster.add_pod("outsider")
    server.start_app("http", 8080)
    server.start_app("echo", 7000)
    server.start_app("banner", 2525)
    env = {"LACEWING_PROXY_OPAQUE_PORTS": "2525"}
    proxies = []
    for pod in (client, server):
        pod.proxy_init()
        proxies.append(pod.start_proxy(env))
    return Mesh(client, server, outsider, *proxies)


def test_proxies_dropped_to_the_proxy_uid(mesh: Mesh) -> None:
    for proxy in (mesh.client_proxy, mesh.server_proxy):
        assert proxy.uids() == (PROXY_UID,) * 4
        assert proxy.status_field("Gid").split() == [str(PROXY_UID)] * 4


def test_curl_goes_through_both_proxies_and_both_count_it(mesh: Mesh) -> None:
    target = f"{mesh.server.ip}:8080"
    before = scrape(mesh.client), scrape(mesh.server)
    for _ in range(3):
        result = mesh.client.curl("-o", "/dev/null", "-w", "%{http_code}", mesh.url("/status/203"))
        assert result.stdout == b"203", result.stderr
    after = scrape(mesh.client), scrape(mesh.server)

    def delta(side: int, name: str, **labels: str) -> float:
        return total(after[side], name, **labels) - total(before[side], name, **labels)

    out = {"direction": "outbound", "authority": target, "target_addr": target}
    assert delta(0, "request_total", **out) == 3
    assert delta(0, "response_total", **out, status_code="203", classification="success") == 3
    assert delta(0, "response_latency_ms_count", **out, status_code="203") == 3
    assert delta(1, "request_total", direction="inbound", authority=target) == 3
    assert (
        delta(1, "response_total", direction="inbound", status_code="203", classification="success")
        == 3
    )
    # each proxy's opposite direction did not see these requests
    assert delta(0, "request_total", direction="inbound") == 0
    assert delta(1, "request_total", direction="outbound") == 0


def test_server_errors_are_classified_as_failures(mesh: Mesh) -> None:
    target = f"{mesh.server.ip}:8080"
    before = scrape(mesh.client)
    result = mesh.client.curl("-o", "/dev/null", "-w", "%{http_code}", mesh.url("/status/503"))
    assert result.stdout == b"503"
    after = scrape(mesh.client)
    labels = {"direction": "outbound", "target_addr": target, "status_code": "503"}
    failed = total(after, "response_total", **labels, classification="failure")
    assert failed - total(before, "response_total", **labels, classification="failure") == 1


def test_non_http_protocol_passes_byte_for_byte(mesh: Mesh) -> None:
    target = f"{mesh.server.ip}:7000"
    before = scrape(mesh.client)
    payload = b"\x00\xffLWT-BINARY\r\n" + os.urandom(2 * 1024 * 1024)
    conn = Conn(mesh.client.connect(mesh.server.ip, 7000))
    sender = send_in_background(
        conn.sock, (payload[i : i + CHUNK] for i in range(0, len(payload), CHUNK))
    )
    echoed = conn.read_exactly(len(payload))
    sender.join(10)
    conn.close()
    assert echoed == payload
    after = scrape(mesh.client)
    opened = total(after, "tcp_open_total", direction="outbound", target_addr=target)
    assert opened - total(before, "tcp_open_total", direction="outbound", target_addr=target) >= 1
    assert total(after, "request_total", target_addr=target) == 0  # never taken for HTTP


def test_server_speaks_first_on_an_opaque_port(mesh: Mesh) -> None:
    conn = Conn(mesh.client.connect(mesh.server.ip, 2525), timeout=3)
    # the client sends nothing first: without opaque-port handling detection would stall
    assert conn.read_until(b"\r\n") == BANNER
    conn.send(b"hello \x00\x01 lacewing\r\n")
    assert conn.read_until(b"\r\n") == b"you said: hello \x00\x01 lacewing\r\n"
    conn.close()


def test_websocket_echo(mesh: Mesh) -> None:
    key = ws.new_key()
    conn = Conn(mesh.client.connect(mesh.server.ip, 8080))
    conn.send(
        (
            f"GET /ws HTTP/1.1\r\nHost: {mesh.server.ip}:8080\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    status, headers = conn.read_head()
    assert status == 101
    assert headers["sec-websocket-accept"] == ws.accept_key(key)
    conn.ws_send(ws.TEXT, "hello, lacewing ✓".encode())
    assert conn.ws_recv() == (ws.TEXT, "hello, lacewing ✓".encode())
    blob = os.urandom(200_000)
    conn.ws_send(ws.BINARY, blob)
    assert conn.ws_recv() == (ws.BINARY, blob)
    conn.ws_send(ws.PING, b"are you there")
    assert conn.ws_recv() == (ws.PONG, b"are you there")
    conn.ws_send(ws.CLOSE, b"\x03\xe8")
    assert conn.ws_recv() == (ws.CLOSE, b"\x03\xe8")
    conn.close()


class RssWatch:
    """Samples the proxies' VmRSS every 20 ms on a thread, for the life of a `with` block."""

    def __init__(self, *procs: Proc) -> None:
        self.procs = procs
        self.baseline = {p.name: p.rss_kib() for p in procs}
        self.peak = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lwt-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for proc in self.procs:
                self.peak[proc.name] = max(self.peak[proc.name], proc.rss_kib())

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def growth_kib(self) -> dict[str, int]:
        return {name: self.peak[name] - self.baseline[name] for name in self.peak}


def _expected_digest(size: int) -> str:
    block, digest = pattern(), hashlib.sha256()
    for _ in range(size // CHUNK):
        digest.update(block)
    return digest.hexdigest()


def test_100mb_download_and_upload_stream_with_bounded_proxy_memory(mesh: Mesh) -> None:
    expected = _expected_digest(HUNDRED_MB)
    target = f"{mesh.server.ip}:8080"
    before = scrape(mesh.client), scrape(mesh.server)
    with RssWatch(mesh.client_proxy, mesh.server_proxy) as rss:
        conn = Conn(mesh.client.connect(mesh.server.ip, 8080), timeout=30)
        conn.send(f"GET /download?bytes={HUNDRED_MB} HTTP/1.1\r\nHost: server\r\n\r\n".encode())
        status, headers = conn.read_head()
        assert status == 200 and int(headers["content-length"]) == HUNDRED_MB
        digest, left = hashlib.sha256(), HUNDRED_MB
        while left:
            piece = conn.read_exactly(min(left, 1 << 20))
            digest.update(piece)
            left -= len(piece)
        assert digest.hexdigest() == expected

        # upload on the same keep-alive connection
        head = f"POST /upload HTTP/1.1\r\nHost: server\r\nContent-Length: {HUNDRED_MB}\r\n\r\n"
        conn.send(head.encode())
        block = pattern()
        for _ in range(HUNDRED_MB // CHUNK):
            conn.sock.sendall(block)
        status, headers = conn.read_head()
        body = json.loads(conn.read_exactly(int(headers["content-length"])))
        conn.close()
    assert status == 200
    assert body == {"bytes": HUNDRED_MB, "sha256": expected}
    after = scrape(mesh.client), scrape(mesh.server)
    for side, direction in ((0, "outbound"), (1, "inbound")):
        for peer, name in (("src", "tcp_read_bytes_total"), ("src", "tcp_write_bytes_total")):
            labels = {"direction": direction, "peer": peer, "target_addr": target}
            moved = total(after[side], name, **labels) - total(before[side], name, **labels)
            assert moved >= HUNDRED_MB, (direction, name, moved)  # it went through the proxy
    growth = rss.growth_kib()
    assert all(kib < RSS_GROWTH_LIMIT_KIB for kib in growth.values()), growth


MALFORMED = {
    "no-colon": (b"GET / HTTP/1.1\r\nHost: x\r\nthis line has no colon\r\n\r\n", 400),
    "bad-length": (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n", 400),
    "huge-head": (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
    "junk": (b"GET / HTTP/9.9\r\n\x00\x01\x02\r\n\r\n", 400),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_requests_are_refused_and_the_proxies_keep_serving(mesh: Mesh, case: str) -> None:
    raw, expected = MALFORMED[case]
    for pod in (mesh.client, mesh.outsider):  # through outbound+inbound, and inbound alone
        conn = Conn(pod.connect(mesh.server.ip, 8080), timeout=5)
        conn.send(raw)
        answer = conn.read_to_end()
        conn.close()
        assert answer.split(b"\r\n", 1)[0].split(b" ", 2)[:2] == [
            b"HTTP/1.1",
            str(expected).encode(),
        ], (pod.name, answer[:200])
    mesh.assert_serving()


def test_slowloris_clients_do_not_starve_others(mesh: Mesh) -> None:
    def open_slow(pod: Pod, count: int) -> list[socket.socket]:
        def dial() -> list[socket.socket]:
            socks = []
            for _ in range(count):
                sock = socket.create_connection((mesh.server.ip, 8080), timeout=5)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: slow\r\n")
                socks.append(sock)
            return socks

        return pod.in_netns(dial, timeout=30)

    slow = open_slow(mesh.outsider, 60) + open_slow(mesh.client, 30)
    try:
        for round_ in range(3):
            for sock in slow:
                try:
                    sock.sendall(f"X-Slow-{round_}: a\r\n".encode())
                except OSError:
                    pass  # the proxy may cut a slow client off: that is fine
            mesh.assert_serving()
            time.sleep(0.3)
    finally:
        for sock in slow:
            sock.close()
    mesh.assert_serving()


def test_connection_flood_leaves_the_proxies_serving(mesh: Mesh) -> None:
    def flood(pod: Pod, count: int) -> list[socket.socket]:
        def dial() -> list[socket.socket]:
            socks = []
            for _ in range(count):
                try:
                    socks.append(socket.create_connection((mesh.server.ip, 8080), timeout=2))
                except OSError:
                    break
            return socks

        return pod.in_netns(dial, timeout=60)

    def accepted() -> tuple[float, float]:
        """Connections each proxy holds from its clients: (client outbound, server inbound)."""
        return (
            total(scrape(mesh.client), "tcp_open_connections", direction="outbound", peer="src"),
            total(scrape(mesh.server), "tcp_open_connections", direction="inbound", peer="src"),
        )

    out0, in0 = accepted()
    held = flood(mesh.outsider, 400) + flood(mesh.client, 200)
    try:
        assert len(held) == 600
        mesh.assert_serving()
        # the flood reached the proxies (not just the kernel's backlog) ...
        flooded = (out0 + 200, in0 + 400)
        assert wait_for(lambda: all(map(operator.ge, accepted(), flooded)), 5), accepted()
    finally:
        for sock in held:
            sock.close()
    # ... and once the clients are gone the proxies hold none of those connections
    assert wait_for(lambda: all(map(operator.le, accepted(), (out0, in0))), 5), accepted()
    mesh.assert_serving()


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_shutdown_is_refused_from_outside_the_pod(mesh: Mesh) -> None:
    conn = Conn(mesh.outsider.connect(mesh.server.ip, 4191), timeout=5)
    conn.send(b"POST /shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    status, _ = conn.read_head()
    conn.close()
    assert status in (403, 404, 405)
    time.sleep(0.3)
    mesh.assert_serving()


@pytest.fixture
def lone_server(netns_cluster: Cluster) -> Iterator[tuple[Pod, Pod, Proc]]:
    client, server = netns_cluster.add_pod("client"), netns_cluster.add_pod("server")
    server.start_app("http", 8080)
    server.proxy_init()
    proxy = server.start_proxy({"LACEWING_PROXY_SHUTDOWN_GRACE_PERIOD": "10s"})
    yield client, server, proxy


def test_shutdown_drains_an_in_flight_slow_request(lone_server: tuple[Pod, Pod, Proc]) -> None:
    client, server, proxy = lone_server
    conn = Conn(client.connect(server.ip, 8080), timeout=10)
    conn.send(b"GET /slow?ms=3000 HTTP/1.1\r\nHost: server\r\n\r\n")
    time.sleep(0.4)  # the request is now with the app

    admin = Conn(server.connect("127.0.0.1", 4191), timeout=5)
    admin.send(b"POST /shutdown HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
    status, _ = admin.read_head()
    admin.close()
    assert status == 200

    def refused() -> bool:
        try:
            client.connect(server.ip, 8080, timeout=1).close()
        except (ConnectionRefusedError, ConnectionResetError):
            # refused, or reset when it landed in the backlog as the listener closed
            return True
        return False

    # new connections are turned away while draining ...
    assert wait_for(refused, 2), "still accepting connections 2 s after /shutdown"
    assert proxy.alive()  # ... but the proxy is still finishing the slow request

    status, headers = conn.read_head()
    body = conn.read_exactly(int(headers["content-length"]))
    assert (status, body) == (200, b"slow done after 3000 ms")
    assert proxy.wait(timeout=10) == 0


def test_metrics_answer_from_inside_the_pod(mesh: Mesh) -> None:
    status, body = http_get(mesh.client, "127.0.0.1", 4191, "/metrics")
    assert status == 200
    text = body.decode()
    for family in ("process_resident_memory_bytes", "process_start_time_seconds", "tcp_open_total"):
        assert f"\n{family}" in text or text.startswith(family)
