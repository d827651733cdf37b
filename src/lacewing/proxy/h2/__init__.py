"""HTTP/2 through the proxy, on the `h2` state machine (sans-I/O) with thin Protocol drivers.

H2Server (accepted connection)  --H2Exchange per stream-->  H2Upstream (from H2Pool)
  settings.py  limits and the h2 configuration
  headers.py   hop-by-hop removal, gRPC status, the proxy's own error answers
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
