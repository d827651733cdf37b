"""HTTP/1 between two meshed proxies as HTTP/2 streams on one mutual-TLS connection
(Linkerd's `l5d-orig-proto`), built on the HTTP/1 and HTTP/2 layers below it.

- `outbound.OrigProtoConnector`: the outbound side's connector; an HTTP/1 upstream connection
  to a meshed endpoint becomes a `StreamTransport` whose requests are HTTP/2 streams.
- `inbound.stream_bridge`: the inbound `H2Server`'s hook; a stream marked `l5d-orig-proto`
  goes to the app as HTTP/1 through an `Http1Server` of its own (`H1Stream`).
- The head mappings are `proxy.origproto` (data, no I/O).
"""
