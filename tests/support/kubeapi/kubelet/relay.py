"""TCP relays across network namespaces: how the API server and the pods reach each other.

A socket keeps the namespace it was made in, so one process can listen in one namespace
and connect in another. `Relay(listener, dial)` accepts on `listener` and, per connection,
calls `dial()` for the other end and copies bytes both ways (two threads per connection,
half-closes passed on); TLS goes through untouched, end to end. Two are used:
- the API relay listens in the node namespace on the bridge address, port 6443, and dials
  the API server on the host's 127.0.0.1: the `kubernetes` Service (10.96.0.1:443) is
  DNATed there, so in-cluster clients reach the API as in a cluster;
- a webhook relay per webhook Service listens on the host's 127.0.0.1 and dials the
  Service's ClusterIP from the node namespace (kube-proxy's rules there pick a ready pod),
  so the API server's admission calls travel the pod network into the webhook's pod, as
  a real API server's do; the test bed's webhook client is pointed at the relay.
`PodProxy` is the API server's `pods/<name>:<port>/proxy/` path: one HTTP listener on the
host's 127.0.0.1 whose request paths start with `/<namespace>/<pod>/<port>`; it dials that
pod's IP and port from the node namespace, passes the request on with the prefix cut from
its request line, and relays the rest untouched.
`stop()` closes the listener and every open connection and joins the threads.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

from lacewing.local.netns import in_netns

__all__ = ["PodProxy", "Relay", "dial_in", "listen_in"]


def listen_in(netns: str | None, host: str, port: int) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.create_server((host, port), backlog=64, reuse_port=False)
        return sock

    return make() if netns is None else in_netns(netns, make)


def dial_in(netns: str | None, host: str, port: int, timeout: float = 5) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(None)
        return sock

    return make() if netns is None else in_netns(netns, make, timeout=timeout + 1)


class Relay:
    def __init__(
        self, listener: socket.socket, dial: Callable[[], socket.socket], name: str
    ) -> None:
        self._listener = listener
        self._dial = dial
        self._name = name
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.port: int = listener.getsockname()[1]
        self._accepter = threading.Thread(target=self._accept, name=f"relay-{name}", daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(
                target=self._serve, args=(conn,), name=f"relay-{self._name}-conn", daemon=True
            )
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._closed:
                sock.close()
                return False
            self._open.add(sock)
            return True

    def _connect(self, conn: socket.socket) -> socket.socket:
        """The other end for an accepted connection (a subclass may read from `conn` first)."""
        return self._dial()

    def _serve(self, conn: socket.socket) -> None:
        if not self._track(conn):
            return
        try:
            upstream = self._connect(conn)
        except (OSError, ValueError):
            self._forget(conn)
            return
        if not self._track(upstream):
            self._forget(conn)
            return
        back = threading.Thread(
            target=self._pump, args=(upstream, conn), daemon=True, name=f"relay-{self._name}-back"
        )
        back.start()
        self._pump(conn, upstream)
        back.join()
        self._forget(conn)
        self._forget(upstream)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        sock.close()

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            doomed = list(self._open)
            threads = list(self._threads)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._accepter.join(5)
        for thread in threads:
            thread.join(5)


class PodProxy(Relay):
    """HTTP to `/<namespace>/<pod>/<port>/<path>` -> `<path>` on that pod, over the pod network."""

    def __init__(
        self, listener: socket.socket, node_netns: str, pod_ip: Callable[[str, str], str | None]
    ) -> None:
        self._node = node_netns
        self._pod_ip = pod_ip
        super().__init__(listener, lambda: socket.socket(), "pod-proxy")

    def base_url(self, namespace: str, pod: str, port: int) -> str:
        return f"http://127.0.0.1:{self.port}/{namespace}/{pod}/{port}"

    def _connect(self, conn: socket.socket) -> socket.socket:
        conn.settimeout(10)
        head = b""
        while b"\r\n" not in head:
            chunk = conn.recv(8192)
            if not chunk or len(head) > 65536:
                raise ValueError("no request line")
            head += chunk
        conn.settimeout(None)
        line, _, rest = head.partition(b"\r\n")
        method, target, version = line.decode("latin-1").split(" ", 2)
        _, namespace, pod, port, *path = target.split("/", 4)
        ip = self._pod_ip(namespace, pod)
        if ip is None or not port.isdigit():
            raise ValueError(f"no pod {namespace}/{pod} on the node")
        upstream = dial_in(self._node, ip, int(port))
        upstream.sendall(f"{method} /{path[0] if path else ''} {version}\r\n".encode() + rest)
        return upstream
