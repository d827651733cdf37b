"""The benchmark's parsers read real wrk / h2load / procfs output correctly."""

from __future__ import annotations

import pytest
from bench.parse import (
    ParseError,
    parse_cpu_times,
    parse_duration_us,
    parse_h2load,
    parse_h2load_log,
    parse_perf_dso,
    parse_proc_stat_ticks,
    parse_rss_kib,
    parse_smaps_rollup,
    parse_strace_summary,
    parse_wrk,
    percentile,
)

WRK = """\
Running 2s test @ http://127.0.0.1:18080/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   185.63us   43.19us 542.00us   72.65%
    Req/Sec    62.61k     6.29k   70.16k    70.00%
  Latency Distribution
     50%  182.00us
     75%  211.00us
     90%    1.05ms
     99%    2.00s
  124488 requests in 2.00s, 17.69MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:  62215.63
Transfer/sec:      8.84MB
"""

H2LOAD = """\
starting benchmark...
Main benchmark duration is over for thread #0. Stopping all clients.

finished in 2.00s, 1000.00 req/s, 145.51KB/s
requests: 2000 total, 2000 started, 2000 done, 1990 succeeded, 4 failed, 5 errored, 1 timeout
status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx
"""


def test_wrk_summary_percentiles_and_errors() -> None:
    r = parse_wrk(WRK)
    assert r.requests == 124488
    assert r.seconds == pytest.approx(2.0)
    assert r.rps == pytest.approx(62215.63)
    assert (r.p50_us, r.p75_us, r.p90_us, r.p99_us) == (182.0, 211.0, 1050.0, 2_000_000.0)
    assert r.errors == 3 + 1 + 2 + 5


def test_wrk_without_latency_flag_is_refused() -> None:
    no_distribution = "\n".join(
        line for line in WRK.splitlines() if "%  " not in line and "Distribution" not in line
    )
    with pytest.raises(ParseError, match="--latency"):
        parse_wrk(no_distribution)


def test_wrk_failure_text_is_refused() -> None:
    with pytest.raises(ParseError, match="no results"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_h2load_summary_counts_every_kind_of_failure() -> None:
    r = parse_h2load(H2LOAD)
    assert r.rps == pytest.approx(1000.0)
    assert r.seconds == pytest.approx(2.0)
    assert r.succeeded == 1990
    assert r.failed == 4 + 5 + 1


def test_h2load_log_keeps_successes_only() -> None:
    log = [
        "1795548373978077\t200\t323\n",
        "1795548373978085\t503\t9999\n",
        "\n",
        "1795548373978156\t200\t412\n",
    ]
    assert parse_h2load_log(log) == [323.0, 412.0]
    with pytest.raises(ParseError, match="line 1"):
        parse_h2load_log(["garbage\n"])


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100..1, unsorted on purpose
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ParseError):
        percentile([], 50)


def test_durations() -> None:
    assert parse_duration_us("52.00us") == 52.0
    assert parse_duration_us("1.5ms") == 1500.0
    assert parse_duration_us("10s") == 10_000_000.0
    with pytest.raises(ParseError):
        parse_duration_us("fast")


def test_proc_stat_survives_a_command_name_with_spaces_and_parens() -> None:
    # Fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime ...
    stat = "4242 (we ird) (name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0"
    assert parse_proc_stat_ticks(stat) == (250, 75)


def test_rss_from_proc_status() -> None:
    status = "Name:\thaproxy\nVmPeak:\t  100 kB\nVmRSS:\t   14628 kB\nThreads:\t1\n"
    assert parse_rss_kib(status) == 14628
    with pytest.raises(ParseError, match="VmRSS"):
        parse_rss_kib("Name:\tzombie\n")


def test_cpu_times_of_one_core_from_proc_stat() -> None:
    stat = (
        "cpu  10 0 10 100 0 0 0 0 0 0\n"
        "cpu0 1 2 3 40 5 6 7 8 0 0\n"
        "cpu1 100 0 50 850 0 0 0 0 0 0\n"
        "intr 12345\n"
    )
    assert parse_cpu_times(stat, 0) == (1 + 2 + 3 + 6 + 7 + 8, 1 + 2 + 3 + 6 + 7 + 8 + 40 + 5)
    assert parse_cpu_times(stat, 1) == (150, 1000)
    with pytest.raises(ParseError, match="cpu7"):
        parse_cpu_times(stat, 7)


STRACE = """\
strace: Process 22084 attached
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 58.29    0.212252          17     11876           sendto
 34.65    0.126181          10     11916        24 recvfrom
  3.20    0.011658          15       763           epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    0.364150          13     24555        24 total
strace: Process 22084 detached
"""


def test_strace_summary_counts_calls_including_failed_ones() -> None:
    assert parse_strace_summary(STRACE) == {
        "sendto": 11876,
        "recvfrom": 11916,
        "epoll_wait": 763,
    }
    with pytest.raises(ParseError, match="strace"):
        parse_strace_summary("strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted")


PERF = """\
# Samples: 1K of event 'cpu-clock:ppp'
#
# Overhead  Shared Object
# ........  .......................................
#
    53.83%  [kernel.kallsyms]
    34.66%  libpython3.11.so.1.0
     5.76%  parser.cpython-311-x86_64-linux-gnu.so
     3.44%  loop.cpython-311-x86_64-linux-gnu.so
     2.20%  libc.so.6
"""


def test_perf_report_by_shared_object() -> None:
    shares = parse_perf_dso(PERF)
    assert shares["[kernel.kallsyms]"] == pytest.approx(0.5383)
    assert shares["loop.cpython-311-x86_64-linux-gnu.so"] == pytest.approx(0.0344)
    assert len(shares) == 5
    with pytest.raises(ParseError, match="perf"):
        parse_perf_dso("# Samples: 0\n")


SMAPS_ROLLUP = """\
55ebdc34d000-7ffee773a000 ---p 00000000 00:00 0                          [rollup]
Rss:               20480 kB
Pss:               11264 kB
Pss_Anon:           9216 kB
Shared_Clean:      10240 kB
Private_Dirty:      9216 kB
Anonymous:          9216 kB
Swap:                  0 kB
"""


def test_smaps_rollup_gives_rss_pss_and_private_anonymous_mib() -> None:
    mem = parse_smaps_rollup(SMAPS_ROLLUP)
    assert (mem.rss, mem.pss, mem.anon) == (20.0, 11.0, 9.0)


def test_smaps_rollup_without_anonymous_is_refused() -> None:
    with pytest.raises(ParseError, match="Anonymous"):
        parse_smaps_rollup(SMAPS_ROLLUP.replace("Anonymous:", "Anon:"))
