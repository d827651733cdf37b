"""Fuzzing profiles: short in `make test` (CI), long with `make fuzz` (LACEWING_FUZZ=long).

Each fuzz test is a hypothesis property over a parser that sees untrusted bytes. The `ci`
profile keeps the whole directory to about a minute (68 s on a loaded 2-core machine, with the
coverage-guided runner's own check); `long` runs many more examples.
A failure hypothesis finds is printed with its smallest example; keep it as a regression
case (`@example(...)`) beside the property it broke.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("long" if os.environ.get("LACEWING_FUZZ") == "long" else "ci")
