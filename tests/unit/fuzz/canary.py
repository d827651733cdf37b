"""A property that is false on purpose, so the coverage-guided runner shows it finds failures.

Not collected by pytest (no `test_` prefix): `test_coverage_guided.py` runs it under atheris
and expects the run to fail with this module's message.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st


@given(st.binary(max_size=8))
def prop_no_input_starts_with_a_zero_byte(data: bytes) -> None:
    assert not data.startswith(b"\x00"), "canary: libFuzzer found a zero byte"
