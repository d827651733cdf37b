"""Identity tests run on asyncio's loop; the two-proxy mesh tests run on uvloop as well,
because inbound TLS termination picks a different TLS protocol there (mtls.TLS_PROTOCOLS)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import uvloop
from tests.unit.controller.identity.running import identity_server

__all__ = ["identity_server"]

_BOTH_LOOPS_IN = ("test_mesh.py",)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], Any]]:
    if item.path.name in _BOTH_LOOPS_IN:
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}
