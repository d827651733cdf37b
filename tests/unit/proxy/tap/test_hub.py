"""The hub: the switch on the exchange's end path, bounded queues, rate and max limits."""

from __future__ import annotations

from lacewing.proxy.exchange import Exchange
from lacewing.proxy.metrics import ProxyMetrics
from lacewing.proxy.tap.filter import TapFilter
from lacewing.proxy.tap.hub import Tap, TapHub

CLIENT = "cli.t.serviceaccount.identity.lacewing.cluster.local"
SERVER = "srv.t.serviceaccount.identity.lacewing.cluster.local"


def _inbound(metrics: ProxyMetrics, path: str, start: float = 1.0) -> Exchange:
    route = metrics.route("inbound", "srv:8080", "10.0.0.2:8080",
                          (("tls", "true"), ("client_id", CLIENT)))  # fmt: skip
    ex = Exchange(route, start)
    if ex.tapping():
        ex.method, ex.path = "GET", path
    return ex


def _hub(metrics: ProxyMetrics) -> TapHub:
    local = {"namespace": "t", "pod": "srv-0", "identity": SERVER}
    return TapHub(metrics.tap, local, wall=lambda: 100.0)


def test_nobody_taps_then_the_point_is_off_and_nothing_is_kept() -> None:
    metrics = ProxyMetrics()
    hub = _hub(metrics)
    ex = _inbound(metrics, "/x")
    assert metrics.tap.hub is None and not ex.tapping() and ex.path == ""
    ex.answered(200, 1.5)
    tap = Tap(TapFilter(), lambda: None)
    hub.open(tap)
    assert metrics.tap.hub is hub
    hub.close(tap)
    assert metrics.tap.hub is None and tap.queue == type(tap.queue)()


def test_ended_exchanges_become_events_for_matching_taps() -> None:
    metrics = ProxyMetrics()
    hub = _hub(metrics)
    woken: list[int] = []
    x = Tap(TapFilter(path="/x"), lambda: woken.append(1))
    everything = Tap(TapFilter(), lambda: None)
    hub.open(x)
    hub.open(everything)
    _inbound(metrics, "/x/1").answered(200, 1.25)
    _inbound(metrics, "/y").refused(403, 1.5)  # the proxy's own answer is tapped too
    assert [e.path for e in x.queue] == ["/x/1"] and woken == [1]
    assert [(e.path, e.status) for e in everything.queue] == [("/x/1", 200), ("/y", 403)]
    event = x.queue[0]
    assert event.direction == "inbound" and event.method == "GET" and event.tls == "true"
    assert event.source == {"identity": CLIENT, "namespace": "t"}
    assert event.destination == {"namespace": "t", "pod": "srv-0", "identity": SERVER}
    assert event.latency_ms == 250.0 and event.ended == 100.0 and event.started == 99.75


def test_outbound_destination_comes_from_the_endpoint_labels() -> None:
    metrics = ProxyMetrics()
    hub = _hub(metrics)
    tap = Tap(TapFilter(destination=(("deployment", "web"),)), lambda: None)
    hub.open(tap)
    route = metrics.route("outbound", "web:80", "10.0.0.9:80", (
        ("tls", "true"), ("server_id", "web.s.serviceaccount.identity.lacewing.cluster.local"),
        ("dst_namespace", "s"), ("dst_deployment", "web"), ("dst_pod", "web-1"),
    ))  # fmt: skip
    ex = Exchange(route, 0.0)
    ex.method, ex.path = "GET", "/"
    ex.failed(502, 0.1)
    (event,) = tap.queue
    assert event.status == 502 and event.source["pod"] == "srv-0"
    assert event.destination == {"identity": "web.s.serviceaccount.identity.lacewing.cluster.local",
                                 "namespace": "s", "deployment": "web", "pod": "web-1"}  # fmt: skip


def test_a_full_queue_drops_and_counts_never_blocks() -> None:
    metrics = ProxyMetrics()
    hub = _hub(metrics)
    tap = Tap(TapFilter(), lambda: None, queue_limit=3)
    hub.open(tap)
    for i in range(10):
        _inbound(metrics, f"/{i}").answered(200, 1.0 + i)
    assert [e.path for e in tap.queue] == ["/0", "/1", "/2"] and tap.dropped == 7
    tap.queue.clear()  # the tapper caught up: events flow again
    _inbound(metrics, "/10").answered(200, 20.0)
    assert [e.path for e in tap.queue] == ["/10"]


def test_rate_limit_and_max() -> None:
    metrics = ProxyMetrics()
    hub = _hub(metrics)
    rated = Tap(TapFilter(rps=2.0), lambda: None)
    capped = Tap(TapFilter(max_events=3), lambda: None)
    hub.open(rated)
    hub.open(capped)
    for i in range(20):  # 20 requests in 1 s (0.05 s apart)
        _inbound(metrics, "/", start=0.0).answered(200, 10.0 + i * 0.05)
    assert 2 <= len(rated.queue) <= 4 and rated.dropped == 20 - len(rated.queue)
    assert len(capped.queue) == 3 and capped.done and capped.dropped == 0


def test_the_proxy_imports_no_tap_module_until_it_serves_tap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, lacewing.proxy.main, lacewing.proxy.identity.sidecar;"
        "print(sorted(m for m in sys.modules if m.startswith('lacewing.proxy.tap')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
