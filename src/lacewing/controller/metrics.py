"""Control-plane metrics: per server connection counters, rendered as Prometheus text (pure).

Every control-plane endpoint is a `lacewing.controller.https.ControllerServer`, which owns a
`ConnectionStats` and calls `opened()` when it accepts a connection and `closed(kind)` when
the connection's task ends. For identity and the injector a connection is one request
(`Connection: close`); for destination and policy it is one watch stream, so
`lacewing_controller_open_connections` is the number of proxies streaming from it.

    lacewing_controller_connections_total{server}            counter
    lacewing_controller_open_connections{server}             gauge
    lacewing_controller_connection_errors_total{server,kind} counter   kind: client | internal
    lacewing_controller_connection_duration_seconds{server}  histogram (a stream: its lifetime)

`render(servers)` writes these for `(label, stats)` pairs; the admin server adds the
process metrics (`lacewing.proxy.metrics.process_metrics`: CPU, RSS, open fds, start time).
The clock is injectable; nothing here does I/O.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable

__all__ = ["DURATION_BUCKETS", "ConnectionStats", "render"]

DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 600, 3600)


class ConnectionStats:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.accepted = 0
        self.finished = 0
        self.errors = {"client": 0, "internal": 0}
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0

    def opened(self) -> float:
        """Count a new connection; returns its start time, for `closed`."""
        self.accepted += 1
        return self.clock()

    def closed(self, started: float, error: str | None = None) -> None:
        elapsed = max(self.clock() - started, 0.0)
        self.finished += 1
        self.buckets[bisect_left(DURATION_BUCKETS, elapsed)] += 1
        self.duration_sum += elapsed
        if error is not None:
            self.errors[error] = self.errors.get(error, 0) + 1

    @property
    def open(self) -> int:
        return self.accepted - self.finished


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return "+Inf" if value == float("inf") else f"{value:g}"


def render(servers: Iterable[tuple[str, ConnectionStats]]) -> list[str]:
    pairs = list(servers)
    prefix = "lacewing_controller_"
    out = [
        f"# HELP {prefix}connections_total Connections accepted.",
        f"# TYPE {prefix}connections_total counter",
    ]
    out += [f'{prefix}connections_total{{server="{_label(n)}"}} {s.accepted}' for n, s in pairs]
    out += [
        f"# HELP {prefix}open_connections Connections (watch streams) open now.",
        f"# TYPE {prefix}open_connections gauge",
    ]
    out += [f'{prefix}open_connections{{server="{_label(n)}"}} {s.open}' for n, s in pairs]
    out += [
        f"# HELP {prefix}connection_errors_total Connections that ended in an error.",
        f"# TYPE {prefix}connection_errors_total counter",
    ]
    for name, stats in pairs:
        for kind, count in sorted(stats.errors.items()):
            out.append(
                f'{prefix}connection_errors_total{{server="{_label(name)}",kind="{kind}"}} {count}'
            )
    family = f"{prefix}connection_duration_seconds"
    out += [f"# HELP {family} How long connections lasted.", f"# TYPE {family} histogram"]
    for name, stats in pairs:
        running = 0
        server = f'server="{_label(name)}"'
        for bound, count in zip((*DURATION_BUCKETS, float("inf")), stats.buckets, strict=True):
            running += count
            out.append(f'{family}_bucket{{{server},le="{_number(bound)}"}} {running}')
        out.append(f"{family}_sum{{{server}}} {stats.duration_sum:.6f}")
        out.append(f"{family}_count{{{server}}} {stats.finished}")
    return out
