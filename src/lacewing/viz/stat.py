"""`viz stat` arithmetic: per-workload golden metrics from two scrapes a window apart (pure).

Like Linkerd's `viz stat`, the figures come from the INBOUND side of each workload's proxies
(what the workload served):

    SUCCESS     response_total{classification="success"} / response_total, over the window
    RPS         response_total / window seconds
    LATENCY_Pq  quantile q of response_latency_ms, from the bucket counts gained in the window,
                interpolated linearly inside the bucket (as Prometheus' histogram_quantile)
    TCP_CONN    tcp_open_connections{peer="src"} now
    TLS         the share of responses whose connection was mutual TLS (tls="true")

A counter that went down between the scrapes belongs to a restarted proxy: its current value
is the increase. A pod scraped only once (it appeared mid-window) counts from zero.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lacewing.viz.promtext import Sample

__all__ = ["PodScrape", "WorkloadStat", "compute", "quantile"]

INBOUND = "inbound"


@dataclass(frozen=True)
class PodScrape:
    """One pod's metrics at one instant (None when the pod is not meshed or not scraped)."""

    namespace: str
    workload: str
    pod: str
    meshed: bool
    samples: tuple[Sample, ...] | None


@dataclass(frozen=True)
class WorkloadStat:
    namespace: str
    name: str
    meshed: int
    pods: int
    requests: float
    successes: float
    tls_requests: float
    window: float
    p50: float | None
    p95: float | None
    p99: float | None
    tcp_conn: int

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.requests if self.requests else None

    @property
    def rps(self) -> float:
        return self.requests / self.window if self.window > 0 else 0.0

    @property
    def tls_share(self) -> float | None:
        return self.tls_requests / self.requests if self.requests else None


def _inbound(samples: Iterable[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for s in samples
        if s.name == name and s.labels.get("direction") == INBOUND
    }


def _increase(
    before: tuple[Sample, ...] | None, after: tuple[Sample, ...], name: str
) -> dict[tuple[tuple[str, str], ...], float]:
    now = _inbound(after, name)
    then = _inbound(before or (), name)
    out = {}
    for key, value in now.items():
        old = then.get(key, 0.0)
        out[key] = value - old if value >= old else value
    return out


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """histogram_quantile over cumulative bucket counts {upper bound: count}; None if empty."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    count = buckets[bounds[-1]]
    rank = q * count
    lower, below = 0.0, 0.0
    for bound in bounds:
        cumulative = buckets[bound]
        if cumulative >= rank:
            if math.isinf(bound):
                return lower  # beyond the largest finite bucket: its bound is all we know
            inside = cumulative - below
            share = (rank - below) / inside if inside > 0 else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, cumulative
    return lower


def compute(
    before: Iterable[PodScrape], after: Iterable[PodScrape], window: float
) -> list[WorkloadStat]:
    """One row per workload present in `after`, sorted by namespace and name."""
    earlier = {(p.namespace, p.pod): p.samples for p in before}
    groups: dict[tuple[str, str], list[PodScrape]] = defaultdict(list)
    for pod in after:
        groups[(pod.namespace, pod.workload)].append(pod)
    rows = []
    for (namespace, workload), pods in sorted(groups.items()):
        requests = successes = tls = 0.0
        buckets: dict[float, float] = defaultdict(float)
        conns = 0
        for pod in pods:
            if pod.samples is None:
                continue
            prior = earlier.get((pod.namespace, pod.pod))
            for key, gained in _increase(prior, pod.samples, "response_total").items():
                labels = dict(key)
                requests += gained
                if labels.get("classification") == "success":
                    successes += gained
                if labels.get("tls") == "true":
                    tls += gained
            for key, gained in _increase(prior, pod.samples, "response_latency_ms_bucket").items():
                buckets[float(dict(key)["le"])] += gained
            conns += int(
                sum(
                    s.value
                    for s in pod.samples
                    if s.name == "tcp_open_connections"
                    and s.labels.get("direction") == INBOUND
                    and s.labels.get("peer") == "src"
                )
            )
        rows.append(
            WorkloadStat(
                namespace=namespace,
                name=workload,
                meshed=sum(1 for p in pods if p.meshed),
                pods=len(pods),
                requests=requests,
                successes=successes,
                tls_requests=tls,
                window=window,
                p50=quantile(0.50, buckets),
                p95=quantile(0.95, buckets),
                p99=quantile(0.99, buckets),
                tcp_conn=conns,
            )
        )
    return rows
