"""Give the heap a load peak left behind back to the kernel, once the peak has passed.

A flood of connections makes the proxy allocate per connection (transports, protocols,
buffers: about 8-11 kB each) and free it all when they close. The objects go (their count
returns to the baseline), but glibc keeps the freed heap pages mapped, so RSS stays near
the peak: measured with `bench/flood_memory.py`, 29.7 MiB before, 75.1 MiB after two
10,000-connection floods, 49.0 MiB after `malloc_trim(0)`. That retention is paid once
(a second flood reuses it) but a pod's memory limit sees it for good.

`AfterLoad.observe(open_now)` is called every `PERIOD` seconds with the number of open
connections. It remembers the peak; when the peak reached `PEAK_AT_LEAST` and the open
count has fallen to `BELOW_FRACTION` of it, it calls `release()` once (a full GC pass,
then `malloc_trim(0)`) and starts a new peak from the current count. Small ups and downs
never trim, so steady traffic costs nothing. Trimming takes milliseconds on a heap of
100 MiB and runs on the event loop, after load, when there is little else to do.

`glibc_trim()` resolves `malloc_trim` through ctypes at start-up (before privileges are
dropped: the interpreter's files may not be readable afterwards), or returns None where
the C library has none (musl), in which case nothing is trimmed.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BELOW_FRACTION", "PEAK_AT_LEAST", "PERIOD", "AfterLoad", "glibc_trim", "rss_kib"]

log = logging.getLogger("lacewing.proxy")

PERIOD = 5.0
"""Seconds between looks at the open-connection count."""
PEAK_AT_LEAST = 1000
"""A peak of fewer open connections leaves too little behind to be worth a trim."""
BELOW_FRACTION = 0.25
"""The load has passed when the open count is at most this fraction of the peak."""


def glibc_trim() -> Callable[[], int] | None:
    """`malloc_trim(0)` of the C library this process runs on, or None if it has none."""
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (ImportError, OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def release() -> int:
        return int(trim(0))

    return release


@dataclass
class AfterLoad:
    release: Callable[[], int]
    rss_kib: Callable[[], int]
    peak_at_least: int = PEAK_AT_LEAST
    below_fraction: float = BELOW_FRACTION
    peak: int = 0
    trims: int = 0

    def observe(self, open_now: int) -> bool:
        """Note the open-connection count; True if this call released memory."""
        self.peak = max(self.peak, open_now)
        if self.peak < self.peak_at_least or open_now > self.peak * self.below_fraction:
            return False
        before = self.rss_kib()
        gc.collect()
        self.release()
        after = self.rss_kib()
        log.info(
            "load passed (peak %d open connections, now %d): RSS %.1f -> %.1f MiB",
            self.peak,
            open_now,
            before / 1024,
            after / 1024,
        )
        self.peak = open_now
        self.trims += 1
        return True


def rss_kib() -> int:
    """This process's resident set (VmRSS), in KiB; 0 where /proc is not readable."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024
