"""Reach the proxies' tap servers (port 4190) over mutual TLS and merge their streams.

`TapClient(context, connect)` is the same on every runtime; only `connect(pod)` (a TCP
socket to that pod's tap port) and the client certificate in `context` differ:

- local cluster (`local_tap_client`): the CLI runs as root on the machine that holds the
  cluster's issuer (`<state>/identity/issuer`), so it issues itself a short-lived leaf for
  `TAP_CLIENT_IDENTITY` (the viz tap component's identity, the one every proxy's default tap
  policy allows) and opens each socket inside the cluster's node namespace, to the pod's IP;
- Kubernetes: the viz tap component (`lacewing.viz.taprelay`, service account `tap` in
  `lacewing-viz`) holds that identity's certificate from the identity controller, opens each
  pod's IP, and names the proxy's own identity (`server_name(pod)`, from the pod's service
  account) so the handshake also checks that it talks to that pod's proxy.

Each pod's stream is read on its own daemon thread (a blocking TLS socket) into one queue;
`events()` yields them (each with `pod` added) until the deadline, Ctrl-C, or every stream
ended; with `heartbeat`, an empty dict whenever that long passed without one (a relay writes
something then, which is how it learns that its own client went away). A refusal
(403 from the tap policy, a failed handshake) is a `RuntimeEnvError` with one
line that says which pod and why.
"""

from __future__ import annotations

import json
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lacewing.errors import RuntimeEnvError
from lacewing.proxy.tap.filter import TapFilter

__all__ = [
    "TAP_CLIENT_IDENTITY",
    "TAP_PORT",
    "TapClient",
    "leaf_context",
    "local_tap_client",
    "request_bytes",
]

TAP_PORT = 4190
TAP_CLIENT_IDENTITY = "tap.lacewing-viz.serviceaccount.identity.lacewing.{trust_domain}"
_LEAF_LIFETIME = timedelta(hours=1)


def request_bytes(tap_filter: TapFilter) -> bytes:
    body = json.dumps(tap_filter.to_json()).encode()
    return (
        b"POST /tap HTTP/1.1\r\nHost: tap\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


class TapClient:
    def __init__(
        self,
        context: ssl.SSLContext,
        connect: Callable[[str], socket.socket],
        server_name: Callable[[str], str | None] = lambda pod: None,
    ) -> None:
        self.context = context
        self.connect = connect
        self.server_name = server_name

    def open(self, pod: str, tap_filter: TapFilter) -> tuple[ssl.SSLSocket, bytes]:
        """A tap stream from `pod`'s proxy, its 200 head read (and the bytes after it);
        raises with one line if refused."""
        try:
            raw = self.connect(pod)
        except OSError as exc:
            raise RuntimeEnvError(f"tap: cannot reach {pod}:{TAP_PORT}: {exc}") from None
        try:
            sock = self.context.wrap_socket(raw, server_hostname=self.server_name(pod))
            sock.sendall(request_bytes(tap_filter))
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
        except (OSError, ssl.SSLError) as exc:
            raw.close()
            raise RuntimeEnvError(f"tap: {pod} refused the tap connection: {exc}") from None
        status_line, _, rest = head.partition(b"\r\n")
        _, _, body = rest.partition(b"\r\n\r\n")
        if not status_line.startswith(b"HTTP/1.1 200"):
            sock.close()
            try:
                why = json.loads(body).get("error", body.decode(errors="replace"))
            except ValueError:
                why = body.decode(errors="replace").strip() or status_line.decode()
            raise RuntimeEnvError(f"tap: {pod}: {why}")
        sock.settimeout(None)  # events may be far apart
        return sock, body

    def events(
        self,
        pods: list[str],
        tap_filter: TapFilter,
        duration: float | None = None,
        opened: Callable[[], None] | None = None,
        heartbeat: float | None = None,
    ) -> Generator[dict[str, Any], None, None]:
        """Every pod's events, merged, until `duration` seconds or all streams end;
        `opened()` is called once every pod's tap is open."""
        socks = []
        threads: list[threading.Thread] = []
        try:
            for pod in pods:
                socks.append((pod, *self.open(pod, tap_filter)))
            lines: queue.Queue[tuple[str, bytes | None]] = queue.Queue()
            threads += [
                threading.Thread(
                    target=_read, args=(pod, sock, early, lines), daemon=True, name=f"tap-{pod}"
                )
                for pod, sock, early in socks
            ]
            for thread in threads:
                thread.start()
            if opened is not None:
                opened()
            deadline = None if duration is None else time.monotonic() + duration
            open_streams = len(threads)
            last = time.monotonic()
            while open_streams:
                wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if wait <= 0:
                    return
                try:
                    pod, line = lines.get(timeout=wait)
                except queue.Empty:
                    if heartbeat is not None and time.monotonic() - last >= heartbeat:
                        last = time.monotonic()
                        yield {}
                    continue
                if line is None:
                    open_streams -= 1
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and "direction" in event:
                    event["pod"] = pod
                    last = time.monotonic()
                    yield event
        finally:
            for _pod, sock, _early in socks:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # ends each reader's recv
                except OSError:
                    pass
            # Close a socket only once its reader is out of recv: closing it under a reader
            # frees the fd number while OpenSSL still reads and writes that number, which the
            # process's next socket gets (a dashboard connection once received a TLS alert).
            for thread, (_pod, sock, _early) in zip(threads, socks, strict=False):
                thread.join(2.0)
                if not thread.is_alive():
                    sock.close()
            for _pod, sock, _early in socks[len(threads) :]:
                sock.close()  # (opened, no reader started)


def _read(pod: str, sock: ssl.SSLSocket, early: bytes,
          lines: queue.Queue[tuple[str, bytes | None]]) -> None:  # fmt: skip
    buf = early
    try:
        while True:
            *done, buf = buf.split(b"\n")
            for line in done:
                lines.put((pod, line))
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (OSError, ValueError):
        pass
    lines.put((pod, None))


def leaf_context(cluster_dir: Path, identity_name: str) -> ssl.SSLContext:
    """A client context with a fresh leaf for `identity_name`, from the cluster's issuer."""
    from lacewing.core.identity import parse_identity
    from lacewing.proxy.identity.credentials import load_chain_in_memory, make_csr, new_private_key
    from lacewing.tls.issuance import Issuer, issue_leaf
    from lacewing.tls.pem import key_to_pem

    directory = cluster_dir / "identity"
    try:
        issuer = Issuer.from_pem((directory / "issuer" / "tls.crt").read_bytes(),
                                 (directory / "issuer" / "tls.key").read_bytes())  # fmt: skip
        anchors = (directory / "ca-bundle.crt").read_text()
    except OSError as exc:
        raise RuntimeEnvError(
            f"tap: cannot read the local cluster's issuer: {exc.strerror}",
            hint="run as root on the machine that runs the cluster",
        ) from None
    identity = parse_identity(identity_name)
    key = new_private_key()
    leaf = issue_leaf(make_csr(key, identity), identity, issuer,
                      now=datetime.now(UTC), lifetime=_LEAF_LIFETIME)  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False  # any pod's proxy: verified against the anchors only
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=anchors)
    chain = (leaf.leaf_pem + "".join(leaf.chain_pem)).encode()
    load_chain_in_memory(context, chain, key_to_pem(key).encode())  # the key stays off disk
    return context


def local_tap_client(cluster_dir: Path, node_netns: str, ips: dict[str, str],
                     trust_domain: str = "cluster.local") -> TapClient:  # fmt: skip
    """A client for a local cluster: sockets opened in its node namespace, to `ips[pod]`."""
    from lacewing.local import netns

    def connect(pod: str) -> socket.socket:
        ip = ips[pod]
        return netns.in_netns(
            node_netns, lambda: socket.create_connection((ip, TAP_PORT), timeout=5), timeout=6
        )

    identity = TAP_CLIENT_IDENTITY.format(trust_domain=trust_domain)
    return TapClient(leaf_context(cluster_dir, identity), connect)
