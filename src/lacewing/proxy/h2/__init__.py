"""HTTP/2 through the proxy, on a lean sans-I/O frame layer of our own (on `hpack`) with thin
Protocol drivers.

H2Server (accepted connection)  --H2Exchange per stream-->  H2Upstream (from H2Pool)
  frames.py    the wire format: frame header, control frames, error codes, H2Error
  hblock.py    HPACK with a bounded memo, and the RFC 9113 header-list checks
  codec.py     one connection: preface, settings, flow control, streams, limits, floods
  settings.py  limits (H2Limits)
  headers.py   gRPC status, the proxy's own error answers
  peer.py      the driver both ends share (batching writes, graceful GOAWAY)
  stream.py    one exchange: flow control both ways, endings, the Pick outcome, metrics
  server.py    the accepted side: a pick per stream, limits, drain
  client.py    one multiplexed connection to an endpoint
  pool.py      those connections per endpoint, opened on demand and reused
"""

from lacewing.proxy.h2.client import H2Upstream
from lacewing.proxy.h2.pool import H2Pool
from lacewing.proxy.h2.server import H2Server
from lacewing.proxy.h2.settings import DEFAULT_LIMITS, H2Limits

__all__ = ["DEFAULT_LIMITS", "H2Limits", "H2Pool", "H2Server", "H2Upstream"]
