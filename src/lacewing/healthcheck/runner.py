"""Run categories of checks in order, retrying what may still become true.

How a run goes:

- Categories run in the order given. A category whose `needs` include a category that ended in
  a fatal failure is not run (and not shown).
- Inside a category, checks run in order. A failed `fatal` check ends its category.
- A failed check with `retry_deadline=True` is retried every `interval` seconds until one
  deadline shared by the whole run (`wait` seconds after the run began, as `--wait` in Linkerd);
  before each retry the context's volatile facts are dropped (`Refreshable.refresh`) so the
  check sees the cluster as it is now. `wait=0` disables retries. An outcome marked `final`
  (`Outcome.give_up`: a container in CrashLoopBackOff or ImagePullBackOff) is not retried:
  a broken cluster shows its first failure at once instead of after the whole `--wait`.
- A check function that raises a `LacewingError` (the API refused, a certificate is unreadable)
  fails with that error's message; any other exception is a bug and propagates.

`expand_hint` fills placeholders in hints (the command replaces `{namespace}` with the
control-plane namespace, so `kubectl -n {namespace} get pods` names the right one).

Time comes from an injected monotonic `clock` and `sleep`, so tests retry without waiting.
The `Observer` hears about every step, which is how the terminal spinner and the streaming
human output work; the returned `Report` is what the JSON renderer and the exit status use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from lacewing.errors import LacewingError
from lacewing.healthcheck.model import (
    Category,
    CategoryReport,
    Check,
    CheckResult,
    Outcome,
    Report,
    Status,
)

__all__ = ["NullObserver", "Observer", "Refreshable", "run_checks"]

C = TypeVar("C")


@runtime_checkable
class Refreshable(Protocol):
    """A context whose cached facts can go stale; `refresh` drops the volatile ones."""

    def refresh(self) -> None: ...


class Observer(Protocol):
    def category_started(self, name: str) -> None: ...

    def check_waiting(self, category: str, description: str, error: str, left: float) -> None:
        """A retryable check failed and will be retried; `left` seconds remain."""

    def check_finished(self, result: CheckResult) -> None: ...

    def category_finished(self, report: CategoryReport) -> None: ...


class NullObserver:
    """An observer that ignores everything (for JSON output and tests)."""

    def category_started(self, name: str) -> None:
        pass

    def check_waiting(self, category: str, description: str, error: str, left: float) -> None:
        pass

    def check_finished(self, result: CheckResult) -> None:
        pass

    def category_finished(self, report: CategoryReport) -> None:
        pass


def _attempt(check: Check[C], ctx: C) -> Outcome:
    try:
        return check.run(ctx)
    except LacewingError as exc:
        return Outcome.fail(exc.message, hint=exc.hint)


def _result(
    category: str,
    check: Check[C],
    outcome: Outcome,
    attempts: int,
    expand_hint: Callable[[str], str],
) -> CheckResult:
    if outcome.passed:
        return CheckResult(category, check.description, Status.SUCCESS, attempts=attempts)
    return CheckResult(
        category,
        check.description,
        Status.WARNING if check.warning else Status.ERROR,
        error=outcome.error,
        hint=expand_hint(outcome.hint if outcome.hint is not None else check.hint),
        fatal=check.fatal and not check.warning,
        attempts=attempts,
    )


def run_checks(
    categories: Sequence[Category[C]],
    ctx: C,
    *,
    wait: float = 0.0,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    observer: Observer | None = None,
    expand_hint: Callable[[str], str] = lambda hint: hint,
) -> Report:
    """Run `categories` against `ctx` and return the report (see the module docstring)."""
    obs: Observer = observer if observer is not None else NullObserver()
    deadline = clock() + max(wait, 0.0)
    report = Report()
    fatally_failed: set[str] = set()
    for category in categories:
        if any(name in fatally_failed for name in category.needs):
            fatally_failed.add(category.name)  # what depends on it cannot run either
            continue
        obs.category_started(category.name)
        cat_report = CategoryReport(category.name)
        for check in category.checks:
            attempts = 1
            outcome = _attempt(check, ctx)
            while (
                not outcome.passed
                and not outcome.final
                and check.retry_deadline
                and clock() < deadline
            ):
                left = deadline - clock()
                obs.check_waiting(category.name, check.description, outcome.error, left)
                sleep(min(interval, left))
                if isinstance(ctx, Refreshable):
                    ctx.refresh()
                attempts += 1
                outcome = _attempt(check, ctx)
            if outcome.skipped:
                continue
            result = _result(category.name, check, outcome, attempts, expand_hint)
            cat_report.results.append(result)
            obs.check_finished(result)
            if result.fatal:
                fatally_failed.add(category.name)
                break
        report.categories.append(cat_report)
        obs.category_finished(cat_report)
    return report
