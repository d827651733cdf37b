"""The after-load trim: once per passed peak, never for small ups and downs."""

from __future__ import annotations

from lacewing.proxy.memory import AfterLoad, glibc_trim, rss_kib


class _Heap:
    def __init__(self) -> None:
        self.rss = 120_000
        self.trims = 0

    def release(self) -> int:
        self.trims += 1
        self.rss = 50_000
        return 1


def _after_load(heap: _Heap) -> AfterLoad:
    return AfterLoad(heap.release, lambda: heap.rss, peak_at_least=1000, below_fraction=0.25)


def test_a_passed_flood_is_trimmed_once() -> None:
    heap = _Heap()
    watch = _after_load(heap)
    for open_now in (10, 4000, 10_000, 9000, 3000):  # the flood, and not yet below 25%
        assert not watch.observe(open_now)
    assert watch.observe(200)  # below 25% of the peak: the load has passed
    assert heap.trims == 1 and watch.trims == 1
    for open_now in (150, 10, 0, 0):  # the peak starts again from 200: too small to trim
        assert not watch.observe(open_now)
    assert heap.trims == 1


def test_a_slow_decline_trims_at_most_once_per_quarter_of_a_large_peak() -> None:
    heap = _Heap()
    watch = _after_load(heap)
    for open_now in range(10_000, -1, -100):
        watch.observe(open_now)
    assert heap.trims == 2  # at 2,500 (a quarter of 10,000), then at 600 (of 2,500)


def test_steady_or_small_traffic_never_trims() -> None:
    heap = _Heap()
    watch = _after_load(heap)
    for open_now in [0, 300, 900, 0, 999, 1, 0] * 10:
        assert not watch.observe(open_now)
    assert heap.trims == 0


def test_a_second_flood_is_trimmed_again() -> None:
    heap = _Heap()
    watch = _after_load(heap)
    for open_now in (10_000, 0, 8000, 100):
        watch.observe(open_now)
    assert heap.trims == 2


def test_this_process_has_a_trim_and_an_rss() -> None:
    release = glibc_trim()
    assert release is not None, "glibc has malloc_trim; this machine runs glibc"
    assert release() in (0, 1)
    assert rss_kib() > 1000
