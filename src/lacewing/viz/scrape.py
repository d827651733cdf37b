"""Scraping a local cluster's proxies: each meshed pod's /metrics, read from inside its netns.

The pods come from the supervisor's status.json; for each meshed pod a thread enters the pod's
network namespace and GETs `127.0.0.1:4191/metrics` (the admin port is never redirected). A
pod that does not answer is scraped as None (it counts as meshed, with no traffic). Needs root,
as the local cluster itself does.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lacewing.errors import UsageError
from lacewing.local import control, netns
from lacewing.viz.promtext import parse
from lacewing.viz.stat import PodScrape

__all__ = ["parse_window", "scrape_local"]

ADMIN_PORT = 4191
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_window(text: str, flag: str) -> float:
    """Seconds in `30s`, `1m30s`, `500ms` or a bare number of seconds; must be above zero."""
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    else:
        parts = _PART.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise UsageError(f"invalid duration {text!r} for {flag}", hint="use e.g. 30s or 1m")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"{flag} must be longer than 0s")
    return seconds


def _metrics() -> str:
    status, body = netns.http_get("127.0.0.1", ADMIN_PORT, "/metrics", timeout=3)
    if status != 200:
        raise OSError(f"/metrics answered {status}")
    return body.decode()


def scrape_local(
    cluster: str,
    namespace: str | None = None,
    fetch: Callable[[str], str] | None = None,
) -> list[PodScrape]:
    """Every pod of the cluster (in `namespace`, if given), meshed ones with their samples."""
    pods = control.read_pods(cluster)

    def default_fetch(space: str) -> str:
        return netns.in_netns(space, _metrics, timeout=5)

    get = fetch or default_fetch
    out = []
    for pod in pods:
        if namespace is not None and pod.namespace != namespace:
            continue
        samples = None
        if pod.meshed:
            try:
                samples = tuple(parse(get(pod.netns)))
            except OSError:
                samples = None
        out.append(PodScrape(pod.namespace, pod.workload, pod.name, pod.meshed, samples))
    return out
