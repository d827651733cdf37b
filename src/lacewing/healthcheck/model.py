"""Health checks as data.

A `Check` is a frozen record: what it verifies (`description`), what to do when it fails
(`hint`), how bad a failure is (`warning` only, or `fatal` for the rest of its category), whether
`--wait` may retry it (`retry_deadline`), and `run`, a function of a context object that returns
an `Outcome`. The context is whatever the check needs (for `lacewing check` it is
`lacewing.healthcheck.facts.Facts`, whose facts are built lazily and cached), so a check never
depends on another check having run first: checks share facts, not mutable fields.

A `Category` is an ordered tuple of checks plus the names of the categories it `needs`: when one
of those ended in a fatal failure, the category is not run at all (nothing can be learnt about
the control plane when the API cannot even be reached).

The runner (`runner.py`) turns outcomes into `CheckResult`s: `success`, `warning` (a failed
check declared `warning=True`) or `error`. Renderers (`render.py`) only read results.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = [
    "Category",
    "CategoryReport",
    "Check",
    "CheckResult",
    "Outcome",
    "Report",
    "Status",
]

C = TypeVar("C")


@dataclass(frozen=True)
class Outcome:
    """What a check function returns: passed, failed (with the error), or not applicable."""

    passed: bool
    error: str = ""
    hint: str | None = None  # overrides the check's hint when the failure needs a specific one
    skipped: bool = False
    final: bool = False  # a state that will not heal by waiting: `--wait` stops retrying

    @classmethod
    def ok(cls) -> Outcome:
        return cls(passed=True)

    @classmethod
    def fail(cls, error: str, hint: str | None = None) -> Outcome:
        return cls(passed=False, error=error, hint=hint)

    @classmethod
    def give_up(cls, error: str, hint: str | None = None) -> Outcome:
        """Failed in a way waiting cannot fix (CrashLoopBackOff, ImagePullBackOff): no retry."""
        return cls(passed=False, error=error, hint=hint, final=True)

    @classmethod
    def skip(cls, reason: str = "") -> Outcome:
        """The check does not apply here (for example, to an external issuer); not shown."""
        return cls(passed=True, error=reason, skipped=True)


@dataclass(frozen=True)
class Check(Generic[C]):
    """One health check, declared as data."""

    description: str
    hint: str
    run: Callable[[C], Outcome]
    warning: bool = False  # a failure is shown as ‼ and does not fail the run
    fatal: bool = False  # a failure skips the rest of the category (and categories needing it)
    retry_deadline: bool = False  # `--wait` keeps retrying a failure until its deadline
    tags: frozenset[str] = frozenset()  # lets a command select checks, e.g. "latest-version"


@dataclass(frozen=True)
class Category(Generic[C]):
    """An ordered group of checks, shown under one heading."""

    name: str
    checks: tuple[Check[C], ...]
    needs: tuple[str, ...] = ()  # categories that must not have failed fatally


class Status(enum.Enum):
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class CheckResult:
    """The result of one check, as renderers see it."""

    category: str
    description: str
    status: Status
    error: str = ""
    hint: str = ""
    fatal: bool = False
    attempts: int = 1


@dataclass
class CategoryReport:
    name: str
    results: list[CheckResult] = field(default_factory=list)


@dataclass
class Report:
    """Everything one run produced, in order."""

    categories: list[CategoryReport] = field(default_factory=list)

    @property
    def success(self) -> bool:
        """True when no check failed as an error (warnings do not count)."""
        return all(r.status is not Status.ERROR for c in self.categories for r in c.results)
