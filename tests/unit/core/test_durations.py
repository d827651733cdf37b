"""One duration parser, four knobs: what each caller's syntax accepts and refuses."""

from __future__ import annotations

import pytest

from lacewing.core.durations import GO, DurationError, DurationSyntax, parse_duration

VALUES = DurationSyntax(units=("h", "m", "s"), fractions=False, descending=True)
WAIT = DurationSyntax(bare_seconds=True)
DAYS = DurationSyntax(units=("d", "h", "m", "s", "ms"))


@pytest.mark.parametrize(
    ("text", "syntax", "seconds"),
    [
        ("24h", GO, 86400.0),
        ("1h30m", GO, 5400.0),
        ("30m1h", GO, 5400.0),  # Go takes pieces in any order
        ("500ms", GO, 0.5),
        ("1.5h", GO, 5400.0),
        (" 20s\n", GO, 20.0),
        ("90", WAIT, 90.0),
        ("0", WAIT, 0.0),
        ("2.5", WAIT, 2.5),
        ("1h30m20s", VALUES, 5420.0),
        ("0s", VALUES, 0.0),
        ("2d", DAYS, 172800.0),
    ],
)
def test_accepted(text: str, syntax: DurationSyntax, seconds: float) -> None:
    assert parse_duration(text, syntax) == seconds


@pytest.mark.parametrize(
    ("text", "syntax"),
    [
        ("", GO),
        ("   ", GO),
        ("90", GO),  # a bare number only where the caller allows it
        ("h", GO),
        ("5 m", GO),
        ("-1s", GO),
        ("+1s", GO),
        ("1m30", GO),
        ("5x", GO),
        ("5mss", GO),
        ("1d", GO),  # days only where asked for
        ("5M", GO),
        (".5h", GO),
        ("1.h", GO),
        ("", WAIT),
        ("5ms", VALUES),  # not a unit there
        ("1.5h", VALUES),  # whole numbers only
        ("30m1h", VALUES),  # largest first
        ("1m1m", VALUES),  # each unit once
        ("24", VALUES),
    ],
)
def test_refused(text: str, syntax: DurationSyntax) -> None:
    with pytest.raises(DurationError, match="is not a duration"):
        parse_duration(text, syntax)
