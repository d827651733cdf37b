"""The runner: order, fatal failures, `needs`, retries against an injected clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from lacewing.errors import ClusterError
from lacewing.healthcheck.model import Category, Check, CheckResult, Outcome, Status
from lacewing.healthcheck.runner import run_checks


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Ctx:
    ready_after: int = 0  # attempts before "pods" become ready
    attempts: int = 0
    refreshed: int = 0
    calls: list[str] = field(default_factory=list)

    def refresh(self) -> None:
        self.refreshed += 1


def ok(ctx: Ctx) -> Outcome:
    return Outcome.ok()


def bad(ctx: Ctx) -> Outcome:
    return Outcome.fail("it broke")


def pods_ready(ctx: Ctx) -> Outcome:
    ctx.attempts += 1
    if ctx.attempts > ctx.ready_after:
        return Outcome.ok()
    return Outcome.fail(f"pod not ready (attempt {ctx.attempts})")


def statuses(report: object) -> list[tuple[str, str, Status]]:
    return [
        (c.name, r.description, r.status)
        for c in report.categories  # type: ignore[attr-defined]
        for r in c.results
    ]


def test_runs_in_order_and_warnings_do_not_fail_the_run() -> None:
    cats = [
        Category("a", (Check("first", "h", ok), Check("second", "fix it", bad, warning=True))),
        Category("b", (Check("third", "h", ok),)),
    ]
    report = run_checks(cats, Ctx())
    assert statuses(report) == [
        ("a", "first", Status.SUCCESS),
        ("a", "second", Status.WARNING),
        ("b", "third", Status.SUCCESS),
    ]
    assert report.success
    warning = report.categories[0].results[1]
    assert (warning.error, warning.hint) == ("it broke", "fix it")


def test_an_error_fails_the_run_but_later_checks_still_run() -> None:
    cats = [Category("a", (Check("broken", "h", bad), Check("after", "h", ok)))]
    report = run_checks(cats, Ctx())
    assert [r.status for r in report.categories[0].results] == [Status.ERROR, Status.SUCCESS]
    assert not report.success


def test_fatal_failure_skips_rest_of_category_and_categories_that_need_it() -> None:
    cats = [
        Category("api", (Check("connect", "h", bad, fatal=True), Check("query", "h", ok))),
        Category("version", (Check("v", "h", ok),), needs=("api",)),
        Category("deep", (Check("d", "h", ok),), needs=("version",)),
        Category("offline", (Check("o", "h", ok),)),
    ]
    report = run_checks(cats, Ctx())
    assert statuses(report) == [("api", "connect", Status.ERROR), ("offline", "o", Status.SUCCESS)]


def test_a_lacewing_error_becomes_a_failure_with_its_own_hint() -> None:
    def raises(ctx: Ctx) -> Outcome:
        raise ClusterError("forbidden: secrets", hint="ask for RBAC")

    report = run_checks([Category("a", (Check("c", "default hint", raises),))], Ctx())
    result = report.categories[0].results[0]
    assert (result.status, result.error, result.hint) == (
        Status.ERROR,
        "forbidden: secrets",
        "ask for RBAC",
    )


def test_skipped_checks_are_not_reported() -> None:
    skip: Check[Ctx] = Check("n/a", "h", lambda c: Outcome.skip("external"))
    cats = [Category("a", (skip,))]
    assert statuses(run_checks(cats, Ctx())) == []


def test_retryable_check_is_retried_until_it_passes() -> None:
    t = FakeTime()
    ctx = Ctx(ready_after=3)
    waited: list[tuple[str, float]] = []

    class Obs:
        def category_started(self, name: str) -> None: ...
        def check_finished(self, result: CheckResult) -> None: ...
        def category_finished(self, report: object) -> None: ...

        def check_waiting(self, category: str, description: str, error: str, left: float) -> None:
            waited.append((error, left))

    cats = [Category("a", (Check("pods ready", "h", pods_ready, retry_deadline=True),))]
    report = run_checks(
        cats, ctx, wait=300, interval=2, clock=t.clock, sleep=t.sleep, observer=Obs()
    )
    result = report.categories[0].results[0]
    assert (result.status, result.attempts) == (Status.SUCCESS, 4)
    assert t.sleeps == [2, 2, 2]
    assert ctx.refreshed == 3
    assert waited[0] == ("pod not ready (attempt 1)", 300)
    assert waited[-1][1] == 296


def test_retries_stop_at_the_deadline_and_report_the_last_error() -> None:
    t = FakeTime()
    cats = [Category("a", (Check("pods ready", "h", pods_ready, retry_deadline=True),))]
    report = run_checks(
        cats, Ctx(ready_after=100), wait=5, interval=2, clock=t.clock, sleep=t.sleep
    )
    result = report.categories[0].results[0]
    assert result.status is Status.ERROR
    assert result.error == "pod not ready (attempt 4)"
    assert t.sleeps == [2, 2, 1]  # never sleeps past the deadline
    assert t.now == 5


def test_wait_zero_and_non_retryable_checks_do_not_retry() -> None:
    t = FakeTime()
    ctx = Ctx(ready_after=1)
    cats: list[Category[Ctx]] = [
        Category("a", (Check("pods", "h", pods_ready, retry_deadline=True),)),
        Category("b", (Check("other", "h", bad),)),
    ]
    report = run_checks(cats, ctx, wait=0, clock=t.clock, sleep=t.sleep)
    assert [r.status for c in report.categories for r in c.results] == [Status.ERROR] * 2
    assert t.sleeps == []
    t2 = FakeTime()
    run_checks([Category("b", (Check("other", "h", bad),))], Ctx(), wait=60, sleep=t2.sleep)
    assert t2.sleeps == []


def test_the_deadline_is_shared_by_the_whole_run() -> None:
    t = FakeTime()
    cats = [
        Category("a", (Check("one", "h", pods_ready, retry_deadline=True),)),
        Category("b", (Check("two", "h", bad, retry_deadline=True),)),
    ]
    run_checks(cats, Ctx(ready_after=3), wait=10, interval=2, clock=t.clock, sleep=t.sleep)
    assert t.now == 10  # 6 s on the first check, the 4 s left on the second


def test_hints_are_expanded() -> None:
    cats = [Category("a", (Check("c", "kubectl -n {namespace} get pods", bad),))]
    report = run_checks(cats, Ctx(), expand_hint=lambda h: h.replace("{namespace}", "mesh"))
    assert report.categories[0].results[0].hint == "kubectl -n mesh get pods"
