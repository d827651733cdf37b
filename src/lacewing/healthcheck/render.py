"""Show check results: human (streamed as checks finish), short, and JSON.

Human output follows Linkerd's shape:

    kubernetes-api
    --------------
    √ can initialize the client
    \N{MULTIPLICATION SIGN} can query the Kubernetes API
        <the error, every line indented by four spaces>
        <the hint>

    Status check results are \N{MULTIPLICATION SIGN}

`‼` marks a failed warning-only check; warnings do not turn the status into a cross. Short output
prints only the categories that have a warning or an error (their header followed by only those
checks), then the status line. `HumanRenderer` is a runner `Observer`, so results appear as they
are decided; on a terminal a retried check shows a spinner line (`⠋ description -- error`)
that is rewritten in place with `\\r` and erased when the check finishes. When the output is not
a terminal no colour codes are used, and what is being waited for goes to the `progress` stream
(stderr) as plain lines: one when a check starts waiting or its error changes, then one every
`PROGRESS_EVERY` seconds (`waiting for "control plane pods are ready": No ready pods for
"lacewing-identity" (280s left)`), so a log shows why a run is taking its time.

`to_json` renders a finished `Report` in Linkerd's `-o json` shape; `hint` and `error` are left
out when empty, as Linkerd does.
"""

from __future__ import annotations

import json
import math
from typing import Any, TextIO

from lacewing.healthcheck.model import CategoryReport, CheckResult, Report, Status

__all__ = ["SYMBOLS", "HumanRenderer", "status_line", "to_json"]

SYMBOLS: dict[Status, str] = {Status.SUCCESS: "√", Status.WARNING: "‼", Status.ERROR: "\u00d7"}
_COLOURS: dict[Status, str] = {Status.SUCCESS: "32", Status.WARNING: "33", Status.ERROR: "31"}
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_INDENT = "    "
PROGRESS_EVERY = 10.0  # seconds between progress lines for the same wait


def status_line(success: bool) -> str:
    return f"Status check results are {SYMBOLS[Status.SUCCESS if success else Status.ERROR]}"


def _detail_lines(result: CheckResult) -> list[str]:
    lines: list[str] = []
    for text in (result.error, result.hint):
        lines.extend(_INDENT + line for line in text.splitlines() if line.strip())
    return lines


class HumanRenderer:
    """Streams results as they finish; `short=True` shows only warnings and errors."""

    def __init__(
        self,
        stream: TextIO,
        *,
        short: bool = False,
        terminal: bool = False,
        progress: TextIO | None = None,
    ) -> None:
        self._stream = stream
        self._progress = progress
        self._last_wait: tuple[str, str, float] | None = None  # description, error, left
        self._short = short
        self._terminal = terminal
        self._frame = 0
        self._spinning = False
        self._header_pending: str | None = None
        self._printed_any_category = False

    # -- Observer -------------------------------------------------------------------------
    def category_started(self, name: str) -> None:
        self._header_pending = name
        if not self._short:
            self._flush_header()

    def check_waiting(self, category: str, description: str, error: str, left: float) -> None:
        first_line = error.splitlines()[0] if error else ""
        if not self._terminal:
            self._progress_line(description, first_line, left)
            return
        frame = _SPINNER[self._frame % len(_SPINNER)]
        self._frame += 1
        text = f"{frame} {description} -- {first_line} (waiting, {int(left)}s left)"
        self._stream.write("\r\x1b[K" + text)
        self._stream.flush()
        self._spinning = True

    def _progress_line(self, description: str, error: str, left: float) -> None:
        if self._progress is None:
            return
        last = self._last_wait
        if (
            last is not None
            and last[:2] == (description, error)
            and last[2] - left < PROGRESS_EVERY
        ):
            return
        self._last_wait = (description, error, left)
        detail = f": {error}" if error else ""
        self._progress.write(f'waiting for "{description}"{detail} ({math.ceil(left)}s left)\n')
        self._progress.flush()

    def check_finished(self, result: CheckResult) -> None:
        self._last_wait = None
        self._clear_spinner()
        if self._short and result.status is Status.SUCCESS:
            return
        self._flush_header()
        self._line(f"{self._symbol(result.status)} {result.description}")
        for line in _detail_lines(result):
            self._line(line)

    def category_finished(self, report: CategoryReport) -> None:
        if self._header_pending is None:  # the header was printed: close the category
            self._line()
        self._header_pending = None

    # -- the end --------------------------------------------------------------------------
    def finish(self, report: Report) -> None:
        self._clear_spinner()
        self._line(status_line(report.success))

    # -- helpers --------------------------------------------------------------------------
    def _flush_header(self) -> None:
        if self._header_pending is None:
            return
        name = self._header_pending
        self._line(name)
        self._line("-" * len(name))
        self._header_pending = None

    def _line(self, text: str = "") -> None:
        self._stream.write(text + "\n")

    def _symbol(self, status: Status) -> str:
        symbol = SYMBOLS[status]
        if self._terminal:
            return f"\x1b[{_COLOURS[status]};1m{symbol}\x1b[0m"
        return symbol

    def _clear_spinner(self) -> None:
        if self._spinning:
            self._stream.write("\r\x1b[K")
            self._spinning = False


def to_json(report: Report) -> str:
    """Linkerd's `check -o json` document for `report`."""
    categories: list[dict[str, Any]] = []
    for category in report.categories:
        checks: list[dict[str, str]] = []
        for result in category.results:
            entry = {"description": result.description}
            if result.hint and result.status is not Status.SUCCESS:
                entry["hint"] = result.hint
            if result.error:
                entry["error"] = result.error
            entry["result"] = result.status.value
            checks.append(entry)
        categories.append({"categoryName": category.name, "checks": checks})
    return json.dumps({"success": report.success, "categories": categories}, indent=2)
