"""Prometheus text as the proxies write it, parsed into samples."""

from __future__ import annotations

import math

import pytest

from lacewing.errors import ProtocolError
from lacewing.viz.promtext import parse, total

TEXT = """\
# HELP response_total Total count of HTTP responses.
# TYPE response_total counter
response_total{direction="inbound",authority="web:8080",tls="true",status_code="200",\
classification="success"} 7
response_total{direction="outbound",authority="a \\"quoted\\" \\\\ name",status_code="500",\
classification="failure"} 2
response_latency_ms_bucket{direction="inbound",le="+Inf"} 9
process_open_fds 12
"""


def test_samples_and_labels() -> None:
    samples = parse(TEXT)
    assert len(samples) == 4
    first = samples[0]
    assert first.name == "response_total"
    assert first.labels["authority"] == "web:8080"
    assert first.value == 7
    assert samples[1].labels["authority"] == 'a "quoted" \\ name'
    assert math.isinf(float(samples[2].labels["le"]))
    assert samples[3].labels == {}


def test_total_selects_by_labels() -> None:
    samples = parse(TEXT)
    assert total(samples, "response_total") == 9
    assert total(samples, "response_total", direction="inbound") == 7
    assert total(samples, "response_total", classification="failure") == 2
    assert total(samples, "missing") == 0


@pytest.mark.parametrize("line", ["not a sample", 'name{a="b"} twelve'])
def test_garbage_is_one_clear_error(line: str) -> None:
    with pytest.raises(ProtocolError, match="not a Prometheus sample"):
        parse(line)
