"""The proxy runs on uvloop in production, so its tests do too (uvloop's transports differ
from asyncio's in ways that matter: early data_received, set_protocol, write behaviour)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], Any]]:
    return {"uvloop": uvloop.new_event_loop}
