"""The demo's final check: the web workload's proxy figures against vote-bot's own counts."""

from __future__ import annotations

from lacewing.local.demo.run import BotCounts, Measure, Snapshot
from lacewing.viz.promtext import parse
from lacewing.viz.stat import PodScrape


def web(ok: int, failed: int) -> PodScrape:
    base = 'direction="inbound",authority="web:8080",target_addr="t",tls="disabled"'
    text = (
        f'response_total{{{base},status_code="200",classification="success"}} {ok}\n'
        f'response_total{{{base},status_code="500",classification="failure"}} {failed}\n'
    )
    return PodScrape("emojivoto", "web", "web-0", True, tuple(parse(text)))


def test_counts_agree() -> None:
    first = Snapshot(10.0, BotCounts(40, 35), [web(35, 5)])
    last = Snapshot(30.0, BotCounts(440, 385), [web(385, 55)])
    measure = Measure.between(first, last)
    assert measure.window == 20.0
    assert measure.bot == BotCounts(400, 350)
    ok, line = measure.agreement()
    assert ok
    assert line == (
        "vote-bot counted 400 requests to web, 350 succeeded (87.50%); web's proxy counted "
        "400 responses, 350 successful: they agree"
    )


def test_counts_differ() -> None:
    first = Snapshot(0.0, BotCounts(0, 0), [web(0, 0)])
    last = Snapshot(5.0, BotCounts(100, 90), [web(89, 10)])
    ok, line = Measure.between(first, last).agreement()
    assert not ok
    assert line.endswith(
        "web's proxy counted 99 responses, 89 successful: they DIFFER (vote-bot's failures: none)"
    )


def test_a_difference_names_the_bots_failures() -> None:
    first = Snapshot(0.0, BotCounts(10, 9, (("500", 1),)), [web(9, 1)])
    last = Snapshot(5.0, BotCounts(110, 98, (("500", 11), ("504", 1))), [web(98, 11)])
    measure = Measure.between(first, last)
    assert measure.bot.failures == (("500", 10), ("504", 1))
    ok, line = measure.agreement()
    assert not ok
    assert line.endswith("they DIFFER (vote-bot's failures: 500 x10, 504 x1)")
