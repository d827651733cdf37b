"""Automatic mutual TLS between meshed pods, proven in network namespaces (root).

    ctl       `lacewing controller identity` (our PKI on :8080, a foreign PKI on :8081)
    client    app-less pod, proxy-init + meshed proxy as web.shop, told server:8080 is api.shop
    server    http app on :8080, proxy-init + meshed proxy as api.shop
    outsider  not meshed: plain curl to the server
    stranger  meshed proxy whose certificate comes from the foreign PKI

Namespaces are the shared bed's, renamed with this role's prefix (`lwg-`). A capture on the
node's bridge shows what crossed between the client and server pods.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.netns import bed
from tests.support.netns.bed import PYTHON, Cluster, Pod, Proc
from tests.support.netns.scrape import scrape, total
from tests.support.tools import require
from tests.unit.proxy.identity.pki import Pki

from lacewing.core.identity import Identity, mint_local_token

pytestmark = pytest.mark.root

PROXY_UID = 2102
KEY = b"netns-local-runtime-key-0123456789"
WEB, API, EVE = Identity("shop", "web"), Identity("shop", "api"), Identity("shop", "eve")


@dataclass
class Mesh:
    cluster: Cluster
    ctl: Pod
    client: Pod
    server: Pod
    outsider: Pod
    stranger: Pod
    files: Path

    def curl(self, pod: Pod, path: str = "/") -> bytes:
        url = f"http://{self.server.ip}:8080{path}"
        return pod.curl("-o", "/dev/null", "-w", "%{http_code}", url, timeout=10).stdout


def _write(directory: Path, name: str, data: str | bytes, owner: int | None = None) -> Path:
    path = directory / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(0o600)
    if owner is not None:
        os.chown(path, owner, owner)
    return path


def _identity_controller(pod: Pod, files: Path, pki: Pki, port: int, tag: str) -> Proc:
    issuer = pki.write_issuer_dir(files / f"issuer-{tag}")
    anchors = _write(files, f"ca-{tag}.crt", pki.anchors_pem)
    proc = pod.spawn(
        f"identity-{tag}",
        [PYTHON, "-m", "lacewing.cli.main", "controller", "identity",
         "--issuer-dir", str(issuer), "--trust-anchors-file", str(anchors),
         "--validator", "local", "--local-token-key-file", str(files / "token.key"),
         "--listen-addr", f"0.0.0.0:{port}"],
    )  # fmt: skip
    pod.wait_port(port)
    return proc


def _meshed_proxy(
    pod: Pod, mesh_files: Path, me: Identity, ctl: str, anchors: Path, peers: str = ""
) -> Proc:
    token = _write(mesh_files, f"token-{pod.name}", mint_local_token(KEY, me.namespace,
                   me.service_account), owner=PROXY_UID)  # fmt: skip
    os.chmod(anchors, 0o644)
    pod.proxy_init()
    env = {
        "LACEWING_PROXY_RUN_AS_UID": str(PROXY_UID),
        "LACEWING_PROXY_RUN_AS_GID": str(PROXY_UID),
        "LACEWING_PROXY_LOG_LEVEL": "info",
        # as lacewing.install.sidecar sets them (the anchors inline, as from the ConfigMap)
        "LACEWING_POD_NAMESPACE": me.namespace,
        "LACEWING_POD_SERVICE_ACCOUNT": me.service_account,
        "LACEWING_IDENTITY_ADDR": ctl,
        "LACEWING_IDENTITY_TRUST_DOMAIN": me.trust_domain,
        "LACEWING_IDENTITY_TRUST_ANCHORS": anchors.read_text(),
        "LACEWING_IDENTITY_TOKEN_FILE": str(token),
        "LACEWING_IDENTITY_PEERS": peers,
    }
    proc = pod.spawn("proxy", [PYTHON, "-m", "lacewing.cli.main", "proxy"], env=env)
    pod.wait_http_ok(4191, "/ready", proc=proc, timeout=30)
    return proc


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    saved = bed.PREFIX
    bed.PREFIX = "lwg"  # this role's namespace prefix (read when names are made)
    files = Path(tempfile.mkdtemp(prefix="lwg-mesh-"))
    files.chmod(0o711)  # the proxies (uid 2102) read their own token and the anchors
    cluster = Cluster(tmp_path_factory.mktemp("lwg-netns-logs"))
    try:
        cluster.start()
        ctl, client, server = (cluster.add_pod(n) for n in ("ctl", "client", "server"))
        outsider, stranger = cluster.add_pod("outsider"), cluster.add_pod("stranger")
        ours, foreign = Pki.make(), Pki.make()
        _write(files, "token.key", KEY)
        _identity_controller(ctl, files, ours, 8080, "ours")
        _identity_controller(ctl, files, foreign, 8081, "foreign")
        anchors = files / "ca-ours.crt"
        both = _write(files, "ca-both.crt", foreign.anchors_pem + ours.anchors_pem)
        server.start_app("http", 8080)
        _meshed_proxy(server, files, API, f"{ctl.ip}:8080", anchors)
        _meshed_proxy(client, files, WEB, f"{ctl.ip}:8080", anchors,
                      peers=f"{server.ip}:8080={API.name}")  # fmt: skip
        _meshed_proxy(stranger, files, EVE, f"{ctl.ip}:8081", both,
                      peers=f"{server.ip}:8080={API.name}")  # fmt: skip
        yield Mesh(cluster, ctl, client, server, outsider, stranger, files)
    except BaseException:
        for pod in cluster.pods.values():
            for proc in pod.procs:
                print(f"----- {proc.name} -----\n{proc.log_tail(30)}")
        raise
    finally:
        cluster.close()
        bed.PREFIX = saved
        shutil.rmtree(files, ignore_errors=True)


def _tcp_payloads(pcap: bytes, a: str, b: str) -> list[bytes]:
    """TCP payloads between hosts `a` and `b` in an Ethernet/IPv4 pcap (tcpdump -w format)."""
    pair = {socket.inet_aton(a), socket.inet_aton(b)}
    payloads, offset = [], 24
    while offset + 16 <= len(pcap):
        incl = struct.unpack_from("<I", pcap, offset + 8)[0]
        frame = pcap[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        if {frame[26:30], frame[30:34]} != pair:
            continue
        ihl = (frame[14] & 0x0F) * 4
        tcp = 14 + ihl
        data_off = (frame[tcp + 12] >> 4) * 4
        payload = frame[tcp + data_off :]
        if payload:
            payloads.append(payload)
    return payloads


def test_curl_between_meshed_pods_is_mutual_tls_on_the_wire(mesh: Mesh) -> None:
    require("tcpdump")  # (was a FileNotFoundError on the pcap where tcpdump is missing)
    node = Pod("node", mesh.cluster.node, "", mesh.cluster)
    capture = mesh.files / "bridge.pcap"
    # The server pod's port on the node's bridge: forwarded frames do not show on the bridge
    # device itself, only on its ports.
    port = f"lwtv{list(mesh.cluster.pods).index('server')}"
    sniffer = node.spawn(
        "tcpdump",
        ["tcpdump", "-i", port, "--immediate-mode", "-U", "-s", "0", "-Z", "root",
         "-w", str(capture)],
    )  # fmt: skip
    try:
        time.sleep(1.0)  # tcpdump needs a moment before it captures
        for _ in range(3):
            assert mesh.curl(mesh.client, "/") == b"200"
        time.sleep(0.5)
    finally:
        sniffer.stop()
    if keep := os.environ.get("LACEWING_KEEP_CAPTURE"):  # evidence for docs/identity.md
        shutil.copy(capture, keep)
    payloads = _tcp_payloads(capture.read_bytes(), mesh.client.ip, mesh.server.ip)
    handshakes = [p for p in payloads if p[:1] == b"\x16" and p[1:2] == b"\x03"]
    assert handshakes, f"no TLS handshake among {len(payloads)} payloads"
    assert not [p for p in payloads if b"HTTP/1." in p or b"GET /" in p], "plaintext HTTP seen"
    # one pooled mTLS connection carries all three requests
    client_hellos = [p for p in handshakes if len(p) > 5 and p[5] == 1]
    assert len(client_hellos) == 1

    inbound = scrape(mesh.server)
    assert total(inbound, "request_total", direction="inbound", tls="true",
                 client_id=WEB.name) >= 3  # fmt: skip
    outbound = scrape(mesh.client)
    assert total(outbound, "identity_cert_refresh_count") == 1
    assert total(outbound, "identity_cert_expiration_timestamp_seconds") > time.time() + 23 * 3600


def test_a_pod_outside_the_mesh_still_reaches_the_server_in_plaintext(mesh: Mesh) -> None:
    assert mesh.curl(mesh.outsider, "/") == b"200"


def test_a_proxy_from_another_trust_anchor_is_refused(mesh: Mesh) -> None:
    before = scrape(mesh.server)
    assert mesh.curl(mesh.stranger, "/") != b"200"
    after = scrape(mesh.server)
    errors = "inbound_tcp_errors_total"
    assert total(after, errors, error="tls_unknown_ca") > total(
        before, errors, error="tls_unknown_ca"
    )
    assert total(after, "request_total", client_id=EVE.name) == 0
