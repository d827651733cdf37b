"""`control_*` metrics: the requests the proxy itself makes to the control plane (Linkerd's names).

Linkerd's proxy counts its own control-plane clients apart from application traffic, labelled
by `addr` (the address dialled) instead of `direction`/`authority`:

    control_request_total{addr}                               a request was sent
    control_response_total{addr, status_code, classification} its response head came (or, with
                                                              status_code="" and failure, the
                                                              connection failed first)
    control_response_latency_ms{addr, status_code}            request sent -> response head

Destination and policy streams (`transport.stream.get_lines`) and the identity client's
certificate requests each hold one `ControlStats` (made once per address, when the proxy
starts), so a request is two attribute bumps. A stream is counted when its head arrives: it
may then last for hours, and what the dashboards ask is whether the control plane answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lacewing.proxy.metrics.proxy import LATENCY_BUCKETS_MS, ResponseStats
from lacewing.proxy.metrics.text import family_header, labels, number, sample

__all__ = ["ControlMetrics", "ControlStats"]

_BOUNDS = (*LATENCY_BUCKETS_MS, float("inf"))


class ControlStats:
    """One control-plane address's requests and responses."""

    __slots__ = ("addr", "clock", "requests", "responses")

    def __init__(self, addr: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.addr, self.clock = addr, clock
        self.requests = 0
        self.responses: dict[int, ResponseStats] = {}  # status (0: none came) -> stats

    def request(self) -> float:
        """Count one request; returns when it started (for `response`)."""
        self.requests += 1
        return self.clock()

    def response(self, status: int, started: float) -> None:
        stats = self.responses.get(status)
        if stats is None:
            stats = self.responses[status] = ResponseStats()
        stats.observe((self.clock() - started) * 1000.0)


class ControlMetrics:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.by_addr: dict[str, ControlStats] = {}

    def addr(self, addr: str) -> ControlStats:
        stats = self.by_addr.get(addr)
        if stats is None:
            stats = self.by_addr[addr] = ControlStats(addr, self.clock)
        return stats

    def render(self) -> list[str]:
        if not self.by_addr:
            return []
        known = sorted(self.by_addr.items())
        out = family_header("control_request_total", "counter",
                            "Requests the proxy made to the control plane.")  # fmt: skip
        out += [sample("control_request_total", labels(("addr",), (a,)), s.requests)
                for a, s in known]  # fmt: skip
        out += family_header("control_response_total", "counter",
                             "Responses the proxy got from the control plane.")  # fmt: skip
        series = [(a, status, r) for a, s in known for status, r in sorted(s.responses.items())]
        for addr, status, r in series:
            cls = "failure" if status == 0 or status >= 500 else "success"
            code = str(status) if status else ""
            lbl = labels(("addr", "status_code", "classification"), (addr, code, cls))
            out.append(sample("control_response_total", lbl, r.count))
        name = "control_response_latency_ms"
        out += family_header(name, "histogram", "Control-plane request to response head.")
        for addr, status, r in series:
            lbl = labels(("addr", "status_code"), (addr, str(status) if status else ""))
            running = 0
            for bound, count in zip(_BOUNDS, r.buckets, strict=True):
                running += count
                out.append(f'{name}_bucket{{{lbl},le="{number(bound)}"}} {running}')
            out.append(sample(f"{name}_sum", lbl, r.total_ms))
            out.append(sample(f"{name}_count", lbl, r.count))
        return out
