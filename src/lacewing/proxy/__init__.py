"""The sidecar proxy's data plane (`lacewing proxy`).

Where things are:
- `config`: LACEWING_PROXY_* environment -> frozen `Config` (docs/proxy-config.md).
- `server`: start-up, privilege drop, signals, staged shutdown; `side`: the per-direction stack
  (inbound/outbound) built once at start-up.
- `accept`: original destination + protocol detection (`detect`) per accepted connection.
- `http1/`: HTTP/1 proxying (request side `server`, endpoint side `upstream`, `pool`, `head`).
- `tcp`: the opaque byte relay and its flow control.
- `transport/`: SO_ORIGINAL_DST, the `Connector` seam (mutual TLS plugs in here), a fake
  transport for tests.
- `metrics/`: Linkerd-named counters and histograms, Prometheus text; `admin`: /metrics,
  /ready, /live, /shutdown.
- `init/` (proxy-init, iptables) and `identity/` (certificates, mTLS contexts) are their own parts.
"""
