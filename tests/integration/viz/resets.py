"""Connections that end with a TCP reset: the client's side of `tcp_close_total{errno!=""}`.

    python resets.py HOST PORT COUNT   ->   {"reset": COUNT}

Each connection sends one whole HTTP request, reads its answer, then closes with SO_LINGER 0
(an RST instead of a FIN): the proxy reading that socket next sees ECONNRESET.
"""

from __future__ import annotations

import json
import socket
import struct
import sys


def main() -> None:
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for _ in range(count):
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            sock.recv(65536)  # the answer: the connection is established end to end
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    print(json.dumps({"reset": count}), flush=True)


if __name__ == "__main__":
    main()
