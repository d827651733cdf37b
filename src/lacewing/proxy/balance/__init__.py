"""Request load balancing: power of two choices over peak-EWMA latency, with failure accrual.

`p2c.Balancer` picks an endpoint per HTTP request (per connection for opaque TCP);
`ewma.PeakEwma` is its load estimate. Both are pure and take time from an injected clock.
"""

from lacewing.proxy.balance.ewma import PeakEwma
from lacewing.proxy.balance.p2c import Balancer, Ticket, Unavailable

__all__ = ["Balancer", "PeakEwma", "Ticket", "Unavailable"]
