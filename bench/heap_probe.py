"""Run `lacewing proxy` with a heap probe: on SIGUSR1 it writes what its memory is made of.

    LACEWING_HEAP_PROBE_DIR=/tmp/probe python bench/heap_probe.py   # instead of `lacewing proxy`

Used as the `exe` of a benchmark pair (a wrapper script that execs this), for finding where a
proxy's memory goes. With `LACEWING_HEAP_PROBE_TRACE=N` in its environment, the first SIGUSR1
starts tracemalloc (N frames per allocation), so later snapshots hold only what was allocated
since and is still alive (tracing from the exec would slow start-up past the benchmark's
readiness timeout). Each SIGUSR1 writes into the directory:

- `snap-K.pickle`: a tracemalloc snapshot (when tracing), to diff with `compare_to`;
- `types-K.txt`: live objects counted by type (gc-tracked objects only: no str/bytes/int);
- `malloc-K.txt`: glibc's `malloc_info` (arenas, free chunks, mmapped), by ctypes;
- `smaps-K.txt`: /proc/self/smaps_rollup at the same moment.

The signal handler runs between two bytecodes of the main thread, so the snapshot is taken
on the event loop's thread while it serves: nothing here changes what the proxy does.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType


def _dump(signum: int, frame: FrameType | None) -> None:
    out = Path(os.environ.get("LACEWING_HEAP_PROBE_DIR", "/tmp"))
    k = len(list(out.glob("smaps-*.txt")))
    (out / f"smaps-{k}.txt").write_text(Path("/proc/self/smaps_rollup").read_text())
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(out / f"snap-{k}.pickle"))
    elif frames := int(os.environ.get("LACEWING_HEAP_PROBE_TRACE", "0")):
        tracemalloc.start(frames)
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    (out / f"types-{k}.txt").write_text(
        "".join(f"{n} {name}\n" for name, n in counts.most_common())
    )
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    stream = libc.fopen(str(out / f"malloc-{k}.txt").encode(), b"w")
    if stream:
        libc.malloc_info(0, stream)
        libc.fclose(stream)


def main() -> int:
    signal.signal(signal.SIGUSR1, _dump)
    from lacewing.proxy.__main__ import run_proxy

    return run_proxy()


if __name__ == "__main__":
    sys.exit(main())
