"""The public surface of lacewing.healthcheck is explicit and importable."""

from __future__ import annotations

import lacewing.healthcheck as healthcheck


def test_every_exported_name_exists() -> None:
    assert sorted(healthcheck.__all__) == healthcheck.__all__
    missing = [name for name in healthcheck.__all__ if not hasattr(healthcheck, name)]
    assert missing == []
