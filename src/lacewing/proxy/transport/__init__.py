"""The proxy's narrow interfaces to sockets.

- `original_dst(sock)` reads where a redirected connection was going (SO_ORIGINAL_DST).
- `Connector` is how the proxy opens a connection to an endpoint: one async method, so a TLS
  connector (mutual TLS, next issue) wraps or replaces `PlainConnector` without the HTTP or TCP
  code knowing.
- `listen_socket(host, port)` binds a listener without the loop's getaddrinfo (`listen`).
- `fake.FakeTransport` is an in-memory transport for tests of protocol code without sockets.
"""

from lacewing.proxy.transport.connect import (
    ConnectError,
    Connector,
    ConnectRefused,
    ConnectTimeout,
    PlainConnector,
)
from lacewing.proxy.transport.listen import listen_socket
from lacewing.proxy.transport.origdst import decode_sockaddr, original_dst

__all__ = [
    "ConnectError",
    "ConnectRefused",
    "ConnectTimeout",
    "Connector",
    "PlainConnector",
    "decode_sockaddr",
    "listen_socket",
    "original_dst",
]
