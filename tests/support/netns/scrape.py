"""Read a proxy's Prometheus text from inside its pod and pick samples by labels."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.support.netns.bed import BedError, Pod, http_get

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise BedError(f"not Prometheus text: {line!r}")
        name, raw_labels, value = match.groups()
        labels = dict(_LABEL.findall(raw_labels or ""))
        samples.append(Sample(name, labels, float(value)))
    return samples


def scrape(pod: Pod, port: int = 4191) -> list[Sample]:
    status, body = http_get(pod, "127.0.0.1", port, "/metrics")
    if status != 200:
        raise BedError(f"{pod.name}: GET /metrics said {status}")
    return parse(body.decode())


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of `name` samples whose labels include all of `labels`."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )
