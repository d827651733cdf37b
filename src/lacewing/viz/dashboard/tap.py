"""The dashboard's live tap: `GET /api/tap?...`, the events of `viz tap` as bounded JSON lines.

    /api/tap?namespace=NS&resource=deploy/NAME[&to=&to_namespace=&path=&method=&authority=
             &max_rps=R][&duration=60s][&max_events=500]

`Tapper(source).open(query)` parses the query (`TapQuery`'s parameters, plus the bounds
`duration`, 60 s by default and at most `MAX_DURATION`, and `max_events`, 500 by default and at
most `MAX_EVENTS`), asks the source for the events (the dashboard's `Source.tap`:
`lacewing.viz.tapstream.tap_events`, the code `viz tap` runs, for a local cluster or the
Kubernetes tap relay) and waits until the taps are open. Then it answers `Streamed`, whose
chunks are JSON lines: first `{"tapping": [pods], "through": relay pod or null}`, then one
event a line (newest last), a bare newline after each quiet `HEARTBEAT` (so the server notices
a browser that went away and closes the stream), and last `{"end": "duration" | "max_events" |
"ended", "events": N}` (after `{"error": "..."}` if the tap broke off). Closing the `Streamed`
(the server always does) closes the source's generator, which closes every tap. At most
`MAX_TAPS` taps are open at once per dashboard (a 429 beyond); a bad query is a 400, a tap that
cannot open a 502, each `{"error": "..."}`. Nothing here does I/O; the clock is injectable.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from typing import Any

from lacewing.errors import LacewingError, UsageError
from lacewing.viz.scrape import parse_window
from lacewing.viz.taprelay import TapQuery
from lacewing.viz.tapstream import Opened

__all__ = [
    "HEARTBEAT",
    "MAX_DURATION",
    "MAX_EVENTS",
    "MAX_TAPS",
    "Bounds",
    "Streamed",
    "TapSource",
    "Tapper",
    "parse_tap",
]

HEARTBEAT = 1.0
DEFAULT_DURATION, MAX_DURATION = 60.0, 300.0
DEFAULT_EVENTS, MAX_EVENTS = 500, 5000
MAX_TAPS = 4
NDJSON = "application/x-ndjson"
TapSource = Callable[[TapQuery, Opened, float], Iterator[dict[str, Any]]]
Response = tuple[int, str, bytes]


@dataclass(frozen=True)
class Bounds:
    duration: float = DEFAULT_DURATION
    max_events: int = DEFAULT_EVENTS


@dataclass
class Streamed:
    """A 200 whose body is `chunks`, written as they come; `close()` ends it, always called."""

    kind: str
    chunks: Iterator[bytes]
    close: Callable[[], None]


def _line(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True).encode() + b"\n"


def parse_tap(query: str) -> tuple[TapQuery, Bounds]:
    """The tap and its bounds from a query string; `UsageError` with one line if wrong."""
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    bounds: dict[str, str] = {}
    rest = []
    for key, value in pairs:
        if key in ("max_events", "duration"):
            if key in bounds:
                raise UsageError(f"tap parameter {key!r} given twice")
            bounds[key] = value
        else:
            rest.append((key, value))
    duration = DEFAULT_DURATION
    if "duration" in bounds:
        duration = parse_window(bounds["duration"], "duration")
        if not 0 < duration <= MAX_DURATION:
            raise UsageError(f"tap duration must be more than 0 and at most {MAX_DURATION:g}s")
    events = DEFAULT_EVENTS
    if "max_events" in bounds:
        try:
            events = int(bounds["max_events"])
        except ValueError:
            raise UsageError(f"tap parameter 'max_events': {bounds['max_events']!r} is not a "
                             "whole number") from None  # fmt: skip
        if not 0 < events <= MAX_EVENTS:
            raise UsageError(f"tap max_events must be from 1 to {MAX_EVENTS}")
    tap = TapQuery.parse(urllib.parse.urlencode(rest))
    return replace(tap, duration=duration), Bounds(duration, events)


class Tapper:
    def __init__(self, source: TapSource | None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.source = source
        self.clock = clock
        self._slots = threading.BoundedSemaphore(MAX_TAPS)

    def open(self, query: str) -> Response | Streamed:
        if self.source is None:
            return 404, "application/json", _line({"error": "this dashboard has no tap"})
        try:
            tap, bounds = parse_tap(query)
        except UsageError as exc:
            return 400, "application/json", _line({"error": str(exc)})
        if not self._slots.acquire(blocking=False):
            why = f"at most {MAX_TAPS} live taps at once: stop one first"
            return 429, "application/json", _line({"error": why})
        opened: list[dict[str, Any]] = []

        def on_open(pods: list[str], through: str | None) -> None:
            opened.append({"tapping": pods, "through": through})

        events: Iterator[dict[str, Any]] | None = None
        early: list[dict[str, Any]] = []
        try:
            events = self.source(tap, on_open, HEARTBEAT)
            while not opened:  # the taps are open once on_open was called
                early.append(next(events))
        except StopIteration:
            opened.append({"tapping": [], "through": None})
        except LacewingError as exc:
            _close(events)
            self._slots.release()
            status = 400 if isinstance(exc, UsageError) else 502
            return status, "application/json", _line({"error": str(exc)})
        except BaseException:
            _close(events)
            self._slots.release()
            raise
        assert events is not None
        released = threading.Event()

        chunks = self._chunks(opened[0], early, events, bounds)

        def close() -> None:
            chunks.close()
            _close(events)
            if not released.is_set():
                released.set()
                self._slots.release()

        return Streamed(NDJSON, chunks, close)

    def _chunks(self, first: dict[str, Any], early: list[dict[str, Any]],
                events: Iterator[dict[str, Any]],
                bounds: Bounds) -> Generator[bytes, None, None]:  # fmt: skip
        deadline = self.clock() + bounds.duration
        yield _line(first)
        count, end = 0, "ended"
        try:
            for event in _chain(early, events):
                if self.clock() >= deadline:
                    end = "duration"
                    break
                if not event:
                    yield b"\n"
                    continue
                count += 1
                yield _line(event)
                if count >= bounds.max_events:
                    end = "max_events"
                    break
            else:
                if self.clock() >= deadline - HEARTBEAT:  # the source ended it at the duration
                    end = "duration"
        except LacewingError as exc:  # a proxy or the relay broke off: one line, then the end
            yield _line({"error": str(exc)})
        yield _line({"end": end, "events": count})


def _chain(early: list[dict[str, Any]],
           events: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:  # fmt: skip
    yield from early
    yield from events


def _close(events: Iterator[dict[str, Any]] | None) -> None:
    close = getattr(events, "close", None)
    if close is not None:
        close()
