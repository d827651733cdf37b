"""TLS meant for a meshed pod's app passes through its proxy; mesh TLS is still terminated (root).

    ctl       `lacewing controller identity`
    server    a TLS app on :8443 with its own CA and certificate (a webhook's shape:
              lacewing-proxy-injector.lacewing.svc), proxy-init + meshed proxy as api.shop
    client    proxy-init + meshed proxy as web.shop, told server:8443 is api.shop
    outsider  not meshed: talks TLS to the app directly, as the API server calls a webhook

The outsider's TLS (with the webhook's name, and with no name at all) must complete with the
APP's certificate through the server's proxy; the meshed client's TLS to the same app travels
inside mutual TLS between the proxies, which the server's proxy terminates (the client's
identity shows in its metrics). The node's bridge capture shows the outer ClientHello's
server name on the wire. Namespaces use this test's prefix (`lws-`).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from tests.integration.identity.test_mtls_netns import (
    KEY,
    _identity_controller,
    _meshed_proxy,
    _tcp_payloads,
    _write,
)
from tests.support.netns.bed import Cluster, Pod
from tests.support.netns.scrape import Sample, scrape, total
from tests.support.tools import require
from tests.unit.proxy.identity.pki import Pki

from lacewing.core.identity import Identity
from lacewing.proxy.identity.clienthello import ClientHello, parse_client_hello
from lacewing.tls.pem import key_to_pem
from lacewing.tls.pki import generate_serving_certificate, generate_webhook_ca

pytestmark = pytest.mark.root

WEB, API = Identity("shop", "web"), Identity("shop", "api")
WEBHOOK = "lacewing-proxy-injector.lacewing.svc"
APP_PORT = 8443


@dataclass
class Bed:
    cluster: Cluster
    server: Pod
    client: Pod
    outsider: Pod
    files: Path
    app_ca_pem: str
    app_cert_der: bytes


@dataclass(frozen=True)
class Talk:
    peer_cert: bytes
    greeting: bytes
    echo: bytes


def _talk_tls(pod: Pod, bed: Bed, server_name: str | None) -> Talk:
    """From inside `pod`: TLS to the server pod's app, trusting only the app's own CA."""
    context = ssl.create_default_context(cadata=bed.app_ca_pem)
    context.check_hostname = server_name is not None  # without a name: verify the chain only

    def talk() -> Talk:
        address = (bed.server.ip, APP_PORT)
        with (
            socket.create_connection(address, timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            peer = tls.getpeercert(binary_form=True) or b""
            greeting = tls.recv(200)
            tls.sendall(b"ping through the proxy\n")
            echo = tls.recv(200)
        return Talk(peer, greeting, echo)

    return pod.in_netns(talk, timeout=15)


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    files = Path(tempfile.mkdtemp(prefix="lws-sni-"))
    files.chmod(0o711)  # the proxies (uid 2102) read their own token and the anchors
    cluster = Cluster(tmp_path_factory.mktemp("lws-netns-logs"), prefix="lws")
    try:
        cluster.start()
        ctl, server, client, outsider = (
            cluster.add_pod(n) for n in ("ctl", "server", "client", "outsider")
        )
        pki = Pki.make()
        _write(files, "token.key", KEY)
        _identity_controller(ctl, files, pki, 8080, "ours")
        anchors = files / "ca-ours.crt"
        app_ca = generate_webhook_ca()
        serving = generate_serving_certificate(app_ca, "lacewing-proxy-injector", "lacewing")
        cert = _write(files, "app.crt", serving.cert_pem)
        key = _write(files, "app.key", key_to_pem(serving.private_key))
        server.start_app("tls-echo", APP_PORT, "--cert", str(cert), "--key", str(key))
        _meshed_proxy(server, files, API, f"{ctl.ip}:8080", anchors)
        _meshed_proxy(client, files, WEB, f"{ctl.ip}:8080", anchors,
                      peers=f"{server.ip}:{APP_PORT}={API.name}")  # fmt: skip
        der = serving.certificate.public_bytes(serialization.Encoding.DER)
        yield Bed(cluster, server, client, outsider, files, app_ca.cert_pem, der)
    except BaseException:
        for pod in cluster.pods.values():
            for proc in pod.procs:
                print(f"----- {proc.name} -----\n{proc.log_tail(30)}")
        raise
    finally:
        cluster.close()
        shutil.rmtree(files, ignore_errors=True)


def _opened(bed: Bed, samples: list[Sample], **tls: str) -> float:
    """Inbound connections to the app (original destination server:8443) with these labels."""
    target = f"{bed.server.ip}:{APP_PORT}"
    return total(samples, "tcp_open_total", direction="inbound", peer="src", target_addr=target,
                 **tls)  # fmt: skip


def test_tls_with_the_webhooks_name_reaches_the_app_with_the_apps_certificate(bed: Bed) -> None:
    talk = _talk_tls(bed.outsider, bed, WEBHOOK)
    assert talk.peer_cert == bed.app_cert_der  # the app's certificate, not the proxy's
    assert talk.greeting == f"tls app saw sni={WEBHOOK}\n".encode()
    assert talk.echo == b"ping through the proxy\n"
    inbound = scrape(bed.server)
    assert _opened(bed, inbound, tls="opaque", sni=WEBHOOK) == 1


def test_tls_without_a_server_name_reaches_the_app_too(bed: Bed) -> None:
    before = scrape(bed.server)
    talk = _talk_tls(bed.outsider, bed, None)
    assert talk.peer_cert == bed.app_cert_der
    assert talk.greeting == b"tls app saw sni=-\n"
    assert talk.echo == b"ping through the proxy\n"
    after = scrape(bed.server)
    labels = {"tls": "no_identity", "no_tls_reason": "no_tls_from_remote"}
    assert _opened(bed, after, **labels) == _opened(bed, before, **labels) + 1


def test_a_meshed_client_still_gets_mutual_tls_terminated_by_the_proxy(bed: Bed) -> None:
    require("tcpdump")
    node = Pod("node", bed.cluster.node, "", bed.cluster)
    capture = bed.files / "bridge.pcap"
    port = f"lwtv{list(bed.cluster.pods).index('server')}"  # the server pod's bridge port
    sniffer = node.spawn(
        "tcpdump",
        ["tcpdump", "-i", port, "--immediate-mode", "-U", "-s", "0", "-Z", "root",
         "-w", str(capture)],
    )  # fmt: skip
    before = scrape(bed.server)
    try:
        time.sleep(1.0)  # tcpdump needs a moment before it captures
        talk = _talk_tls(bed.client, bed, WEBHOOK)
        time.sleep(0.5)
    finally:
        sniffer.stop()
    # the app's own TLS, end to end, inside the proxies' mutual TLS
    assert talk.peer_cert == bed.app_cert_der
    assert talk.greeting == f"tls app saw sni={WEBHOOK}\n".encode()
    assert talk.echo == b"ping through the proxy\n"
    after = scrape(bed.server)
    meshed = {"tls": "true", "client_id": WEB.name}
    assert _opened(bed, after, **meshed) == _opened(bed, before, **meshed) + 1
    passed = {"tls": "opaque", "sni": WEBHOOK}
    assert _opened(bed, after, **passed) == _opened(bed, before, **passed)  # not relayed
    outbound = scrape(bed.client)
    assert total(outbound, "tcp_open_total", direction="outbound", peer="dst", tls="true",
                 server_id=API.name) >= 1  # fmt: skip
    # on the wire, the only ClientHello between the pods names the server proxy's identity
    payloads = _tcp_payloads(capture.read_bytes(), bed.client.ip, bed.server.ip)
    hellos = [parse_client_hello(p) for p in payloads if p[:1] == b"\x16" and p[5:6] == b"\x01"]
    assert hellos == [ClientHello(API.name, ("lacewing.io/opaque",))]
    assert not [p for p in payloads if WEBHOOK.encode() in p], "the app's SNI leaked in clear"
