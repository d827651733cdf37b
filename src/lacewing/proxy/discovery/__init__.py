"""Service discovery in the proxy: streams from the destination controller, cached per authority.

`client.DestinationClient` keeps one resilient stream per authority and serves the last known
endpoints while the control plane is away.
"""

from lacewing.proxy.discovery.client import DestinationClient, Resolution

__all__ = ["DestinationClient", "Resolution"]
