"""Go-style durations (`24h`, `1h30m`, `500ms`), parsed once for every flag and value.

How it works: the text (outer blanks stripped) is read as a run of `NUMBER UNIT` pieces with
nothing between them; each piece's number times its unit's seconds is added up. What a
caller accepts is a `DurationSyntax`, data rather than another parser:

    units         which units may appear (`ms` is milliseconds, `m` minutes, `d` days)
    fractions     whether `1.5h` may be written (else whole numbers only)
    bare_seconds  whether a plain number (`90`, `0`) means seconds
    descending    whether each unit may appear once at most, largest first (`1h30m`, never
                  `30m1h` or `1m1m`), as in a Kubernetes manifest's values

Anything else (a sign, a blank inside, an unknown unit, nothing at all) raises
`DurationError`; callers turn it into their own message, which names their flag or value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "GO",
    "UNIT_SECONDS",
    "DurationError",
    "DurationSyntax",
    "parse_duration",
]

UNIT_SECONDS: Final[dict[str, float]] = {
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 0.001,
}

_PIECE = re.compile(r"(\d+(?:\.\d+)?)([a-z]+)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class DurationError(ValueError):
    """The text is not a duration in the syntax asked for."""


@dataclass(frozen=True)
class DurationSyntax:
    units: tuple[str, ...] = ("h", "m", "s", "ms")
    fractions: bool = True
    bare_seconds: bool = False
    descending: bool = False


GO: Final = DurationSyntax()
"""Go's `time.ParseDuration` units from milliseconds up, in any order."""


def parse_duration(text: str, syntax: DurationSyntax = GO) -> float:
    """Seconds in `text`; `DurationError` if it is not a duration in `syntax`."""
    value = text.strip()
    if syntax.bare_seconds and _NUMBER.fullmatch(value):
        return float(value)
    pos, seconds, last_unit = 0, 0.0, float("inf")
    for piece in _PIECE.finditer(value):
        number, unit = piece.groups()
        if piece.start() != pos or unit not in syntax.units:
            break
        if not syntax.fractions and "." in number:
            break
        if syntax.descending:
            if UNIT_SECONDS[unit] >= last_unit:
                break
            last_unit = UNIT_SECONDS[unit]
        seconds += float(number) * UNIT_SECONDS[unit]
        pos = piece.end()
    if not value or pos != len(value):
        raise DurationError(f"{text!r} is not a duration")
    return seconds
