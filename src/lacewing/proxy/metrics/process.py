"""`process_*` metrics read from /proc at scrape time (Linux), as Prometheus clients name them.

resident memory from /proc/self/statm, CPU from os.times(), start time from the boot time in
/proc/stat plus the process's start tick in /proc/self/stat, open fds by listing /proc/self/fd,
max fds from RLIMIT_NOFILE. A source that is unreadable is left out, never an error.
"""

from __future__ import annotations

import os
import resource

from lacewing.proxy.metrics.text import family_header, number

__all__ = ["process_metrics"]

_FAMILIES = (
    ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds."),
    ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
    ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes."),
    ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch."),
    ("process_open_fds", "gauge", "Number of open file descriptors."),
    ("process_max_fds", "gauge", "Maximum number of open file descriptors."),
)  # fmt: skip


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _values() -> dict[str, float]:
    values: dict[str, float] = {}
    times = os.times()
    values["process_cpu_seconds_total"] = times.user + times.system
    page = os.sysconf("SC_PAGE_SIZE")
    statm = _read("/proc/self/statm")
    if statm:
        fields = statm.split()
        values["process_virtual_memory_bytes"] = int(fields[0]) * page
        values["process_resident_memory_bytes"] = int(fields[1]) * page
    stat, boot = _read("/proc/self/stat"), _read("/proc/stat")
    if stat and boot:
        start_ticks = int(stat.rpartition(")")[2].split()[19])
        btime = next(
            (int(line.split()[1]) for line in boot.splitlines() if line.startswith("btime")), None
        )
        if btime is not None:
            values["process_start_time_seconds"] = btime + start_ticks / os.sysconf("SC_CLK_TCK")
    try:
        values["process_open_fds"] = len(os.listdir("/proc/self/fd"))
    except OSError:
        pass
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    values["process_max_fds"] = float(soft)
    return values


def process_metrics() -> list[str]:
    values = _values()
    out: list[str] = []
    for name, kind, help_text in _FAMILIES:
        if name in values:
            out += family_header(name, kind, help_text)
            out.append(f"{name} {number(values[name])}")
    return out
