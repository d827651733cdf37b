"""The proxy's metrics: Linkerd's names and labels, rendered as Prometheus text.

The data path never builds label dicts: a connection looks up its `TcpStats` (one tuple-keyed
dict lookup when it opens) and a request its `RouteStats`, then bumps plain attributes;
`ProxyMetrics.render()` turns those objects into text only when /metrics is scraped.
"""

from lacewing.proxy.metrics.process import process_metrics
from lacewing.proxy.metrics.proxy import (
    LATENCY_BUCKETS_MS,
    ProxyMetrics,
    ResponseStats,
    RouteStats,
    TcpStats,
)

__all__ = [
    "LATENCY_BUCKETS_MS",
    "ProxyMetrics",
    "ResponseStats",
    "RouteStats",
    "TcpStats",
    "process_metrics",
]
