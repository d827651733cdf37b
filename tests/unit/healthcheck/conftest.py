"""Health-check tests never reach the internet: the version source points at a closed port."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_internet_version_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LACEWING_VERSION_CHECK_URL", "http://127.0.0.1:9/version.json")
    monkeypatch.delenv("LACEWING_SKIP_VERSION_CHECK", raising=False)
