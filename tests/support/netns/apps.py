"""Tiny servers that play the application in a pod: `python -m tests.support.netns.apps KIND`.

Kinds (all listen on 0.0.0.0:--port; one thread per connection, stdlib only):

- `http`: HTTP/1.1 with keep-alive.
    GET  /             200, JSON {"app", "method", "path", "headers"}
    GET  /status/<n>   status n, empty body
    GET  /slow?ms=<n>  waits n ms, then 200 "slow done after <n> ms"
    GET  /download?bytes=<n>  200 with n bytes of `pattern()` streamed in 64 KiB writes
    POST /upload       reads the body (Content-Length or chunked) as it arrives;
                       200 JSON {"bytes": n, "sha256": hex}
    GET  /ws           WebSocket upgrade, then echoes text/binary frames, answers pings
- `echo`: raw TCP echo of whatever arrives (a non-HTTP protocol).
- `origdst`: a stand-in for the proxy when testing iptables alone: answers any request with
  HTTP 200 "original-dst <ip>:<port>\n", read from SO_ORIGINAL_DST.
- `banner`: server speaks first: sends BANNER on connect, then for each line received sends
  b"you said: " + line (a protocol where detection would wait forever for a client byte).
- `tls-echo`: a TLS server with its own certificate (`--cert`, `--key`: PEM files), as a
  webhook is: after the handshake it sends b"tls app saw sni=<name or ->\n", then echoes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import socketserver
import ssl
import struct
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.netns import ws

BANNER = b"220 lwt-banner ready\r\n"
CHUNK = 64 * 1024


def pattern(size: int = CHUNK) -> bytes:
    """Deterministic non-repeating-looking bytes (so corruption or reordering shows)."""
    return bytes((i * 7 + (i >> 8)) & 0xFF for i in range(size))


class HttpApp(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lwt-app"

    def log_message(self, format: str, *args: object) -> None:  # quiet: logs go to a file
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/":
            body = json.dumps(
                {
                    "app": "lwt-http",
                    "method": "GET",
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
            ).encode()
            self._send(200, body, "application/json")
        elif url.path.startswith("/status/"):
            self._send(int(url.path.rsplit("/", 1)[1]), b"")
        elif url.path == "/slow":
            ms = int(query.get("ms", "1000"))
            time.sleep(ms / 1000)
            self._send(200, f"slow done after {ms} ms".encode())
        elif url.path == "/download":
            self._download(int(query.get("bytes", "0")))
        elif url.path == "/ws":
            self._websocket()
        else:
            self._send(404, b"not found")

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/upload":
            self._send(404, b"not found")
            return
        digest = hashlib.sha256()
        total = 0
        for chunk in self._body_chunks():
            digest.update(chunk)
            total += len(chunk)
        self._send(200, json.dumps({"bytes": total, "sha256": digest.hexdigest()}).encode())

    def _body_chunks(self) -> Iterator[bytes]:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    chunk = self.rfile.read(min(left, CHUNK))
                    if not chunk:
                        return
                    left -= len(chunk)
                    yield chunk
                self.rfile.readline()
        left = int(self.headers.get("Content-Length", "0"))
        while left:
            chunk = self.rfile.read(min(left, CHUNK))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    def _download(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        block = pattern()
        left = size
        while left:
            piece = block[: min(left, CHUNK)]
            self.wfile.write(piece)
            left -= len(piece)

    def _websocket(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key")
        if self.headers.get("Upgrade", "").lower() != "websocket" or not key:
            self._send(400, b"expected a websocket upgrade")
            return
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", ws.accept_key(key))
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            try:
                opcode, payload = ws.read_frame(self._read_exactly)
            except (ConnectionError, EOFError):
                return
            if opcode == ws.CLOSE:
                self.wfile.write(ws.encode_frame(ws.CLOSE, payload[:2], mask=False))
                return
            reply = ws.PONG if opcode == ws.PING else opcode
            self.wfile.write(ws.encode_frame(reply, payload, mask=False))
            self.wfile.flush()

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise EOFError("peer closed mid-frame")
        return data

    def _send(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class EchoApp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(CHUNK):
            self.request.sendall(data)


class BannerApp(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(BANNER)
        self.wfile.flush()
        while line := self.rfile.readline():
            self.wfile.write(b"you said: " + line)
            self.wfile.flush()


class TlsEchoApp(socketserver.BaseRequestHandler):
    context: ssl.SSLContext  # set by main()

    def handle(self) -> None:
        try:
            tls = self.context.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            print(f"tls-echo: handshake failed: {exc}", flush=True)
            return
        with tls:
            tls.sendall(f"tls app saw sni={getattr(tls, 'seen_sni', None) or '-'}\n".encode())
            while data := tls.recv(CHUNK):
                tls.sendall(data)


def _tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def remember(conn: ssl.SSLSocket | ssl.SSLObject, name: str | None, _: object) -> None:
        conn.seen_sni = name  # type: ignore[union-attr]

    context.sni_callback = remember  # type: ignore[assignment]
    return context


SO_ORIGINAL_DST = 80


def original_dst(sock: socket.socket) -> str:
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return f"{socket.inet_ntoa(packed)}:{port}"


class OrigDstApp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(CHUNK)
        body = f"original-dst {original_dst(self.request)}\n".encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        self.request.sendall(head.encode() + body)


class TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024


class HttpServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="apps")
    parser.add_argument("kind", choices=["http", "echo", "banner", "origdst", "tls-echo"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", help="tls-echo: the server certificate (PEM file)")
    parser.add_argument("--key", help="tls-echo: its private key (PEM file)")
    args = parser.parse_args(argv)
    address = ("0.0.0.0", args.port)
    server: socketserver.TCPServer
    if args.kind == "http":
        server = HttpServer(address, HttpApp)
    elif args.kind == "echo":
        server = TcpServer(address, EchoApp)
    elif args.kind == "origdst":
        server = TcpServer(address, OrigDstApp)
    elif args.kind == "tls-echo":
        if not args.cert or not args.key:
            parser.error("tls-echo needs --cert and --key")
        TlsEchoApp.context = _tls_context(args.cert, args.key)
        server = TcpServer(address, TlsEchoApp)
    else:
        server = TcpServer(address, BannerApp)
    print(f"lwt app {args.kind} listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
