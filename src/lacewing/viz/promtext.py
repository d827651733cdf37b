"""Prometheus text exposition -> samples (pure).

Only what the proxies' /metrics emit is needed: `name{label="value",...} number` lines, `#`
comments skipped, escaped quotes and backslashes in label values honoured. A line that is not
a sample raises `ProtocolError` naming it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from lacewing.errors import ProtocolError

__all__ = ["Sample", "parse", "total"]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_SPECIAL = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def parse(text: str) -> list[Sample]:
    samples = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ProtocolError(f"not a Prometheus sample: {line[:80]!r}")
        name, raw, value = match.groups()
        labels = {k: _unescape(v) for k, v in _LABEL.findall(raw or "")}
        try:
            number = _SPECIAL[value] if value in _SPECIAL else float(value)
        except ValueError:
            raise ProtocolError(f"not a Prometheus sample value: {line[:80]!r}") from None
        samples.append(Sample(name, labels, number))
    return samples


def total(samples: Iterable[Sample], name: str, **labels: str) -> float:
    """Sum of the `name` samples whose labels include all of `labels`."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )
