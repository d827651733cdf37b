"""HTTP/1.x proxying on asyncio Protocols and httptools.

- `head`: pure helpers: which headers matter to a proxy (a table), rebuilding a head without
  hop-by-hop headers, the proxy's own error responses.
- `server.Http1Server`: one per accepted HTTP/1 connection; parses requests, answers them in
  order, streams bodies, turns upgrades into a byte tunnel.
- `upstream.UpstreamConn`: one per connection to an endpoint; parses responses and streams them
  back to the `Http1Server` it is lent to.
- `pool.Pool`: idle keep-alive `UpstreamConn`s per endpoint.
"""
