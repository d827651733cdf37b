from __future__ import annotations

import errno

from tests.unit.proxy.promtext import parse

from lacewing.proxy.metrics import LATENCY_BUCKETS_MS, ProxyMetrics, process_metrics
from lacewing.proxy.metrics.proxy import TLS_DISABLED, TLS_PASSTHRU


def test_linkerd_buckets() -> None:
    assert LATENCY_BUCKETS_MS[:6] == (1, 2, 3, 4, 5, 10)
    assert LATENCY_BUCKETS_MS[-1] == 50000 and len(LATENCY_BUCKETS_MS) == 25


def test_requests_responses_and_histogram_render() -> None:
    m = ProxyMetrics()
    route = m.route("inbound", 'web:80"x', "10.0.0.5:8080", TLS_DISABLED)
    route.requests += 3
    route.response(200, 0.4)
    route.response(200, 1.0)  # le="1" is inclusive
    route.response(503, 7.0)
    samples = parse("\n".join(m.render()))
    base = {"direction": "inbound", "authority": 'web:80"x', "target_addr": "10.0.0.5:8080",
            "tls": "disabled"}  # fmt: skip
    assert samples[("request_total", base)] == 3
    ok = {**base, "status_code": "200", "classification": "success"}
    bad = {**base, "status_code": "503", "classification": "failure"}
    assert samples[("response_total", ok)] == 2
    assert samples[("response_total", bad)] == 1
    h = {**base, "status_code": "200"}
    assert samples[("response_latency_ms_bucket", {**h, "le": "1"})] == 2
    assert samples[("response_latency_ms_bucket", {**h, "le": "+Inf"})] == 2
    assert samples[("response_latency_ms_count", h)] == 2
    assert samples[("response_latency_ms_sum", h)] == 1.4
    h5 = {**base, "status_code": "503"}
    assert samples[("response_latency_ms_bucket", {**h5, "le": "5"})] == 0
    assert samples[("response_latency_ms_bucket", {**h5, "le": "10"})] == 1


def test_tcp_counters_and_open_gauge() -> None:
    now = [100.0]
    m = ProxyMetrics(clock=lambda: now[0])
    s = m.tcp_stats("outbound", "src", "10.0.0.9:80", TLS_PASSTHRU)
    s.opened += 3
    opened_at = s.clock()
    now[0] += 0.5  # 500 ms later
    s.close(None, opened_at)
    s.close(ConnectionResetError(errno.ECONNRESET, "reset by peer"), opened_at)
    s.read_bytes += 100
    m.error("outbound", "no_original_dst")
    samples = parse("\n".join(m.render()))
    lbl = {"direction": "outbound", "peer": "src", "target_addr": "10.0.0.9:80",
           "tls": "no_identity", "no_tls_reason": "passthru"}  # fmt: skip
    assert samples[("tcp_open_total", lbl)] == 3
    ok = {**lbl, "classification": "success", "errno": ""}
    reset = {**lbl, "classification": "failure", "errno": "ECONNRESET"}
    assert samples[("tcp_close_total", ok)] == 1
    assert samples[("tcp_close_total", reset)] == 1
    assert samples[("tcp_open_connections", lbl)] == 1
    assert samples[("tcp_read_bytes_total", lbl)] == 100
    assert samples[("outbound_tcp_errors_total", {"error": "no_original_dst"})] == 1
    # lifetimes: 500 ms is in le="1000", not le="100"
    assert samples[("tcp_connection_duration_ms_bucket", {**ok, "le": "100"})] == 0
    assert samples[("tcp_connection_duration_ms_bucket", {**ok, "le": "1000"})] == 1
    assert samples[("tcp_connection_duration_ms_bucket", {**reset, "le": "+Inf"})] == 1
    assert samples[("tcp_connection_duration_ms_sum", reset)] == 500
    assert samples[("tcp_connection_duration_ms_count", ok)] == 1


def test_a_failure_without_errno_is_a_failure_with_an_empty_errno() -> None:
    m = ProxyMetrics()
    s = m.tcp_stats("inbound", "src", "10.0.0.9:80", TLS_DISABLED)
    s.opened += 1
    s.close(TimeoutError(), s.clock())
    samples = parse("\n".join(m.render()))
    lbl = {"direction": "inbound", "peer": "src", "target_addr": "10.0.0.9:80",
           "tls": "disabled", "classification": "failure", "errno": ""}  # fmt: skip
    assert samples[("tcp_close_total", lbl)] == 1


def test_process_metrics_are_plausible() -> None:
    samples = parse("\n".join(process_metrics()))
    assert 1e6 < samples[("process_resident_memory_bytes", {})] < 1e9
    assert samples[("process_open_fds", {})] >= 3
    assert samples[("process_max_fds", {})] >= samples[("process_open_fds", {})]
    assert samples[("process_start_time_seconds", {})] > 1.6e9
    assert samples[("process_cpu_seconds_total", {})] > 0
