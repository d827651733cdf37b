"""Suite-wide rules.

- Tests marked `root` need root, Linux network namespaces and iptables; they are skipped, with
  the reason, where those are missing (CI runs as root, so there they run).
- Every async test runs under `_task_guard`: a test that leaves asyncio tasks pending fails
  (no orphan tasks), as kopf's suite does.
"""

from __future__ import annotations

import asyncio
import inspect
import os

import pytest

from tests.support.tools import missing

pytest_plugins = [
    "tests.support.kubeapi.pytest_plugin",
    "tests.support.netns_plugin",
    "tests.support.golden",
]


def _root_skip_reason() -> str | None:
    if os.name != "posix" or not os.path.exists("/proc/self/ns/net"):
        return "needs Linux network namespaces"
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables"):
        reason = missing(tool)
        if reason is not None:
            return reason
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _root_skip_reason()
    for item in items:
        if reason and item.get_closest_marker("root"):
            item.add_marker(pytest.mark.skip(reason=reason))
        func = getattr(item, "function", None)
        if func is not None and inspect.iscoroutinefunction(func):
            item.fixturenames.insert(0, "_task_guard")  # type: ignore[attr-defined]


@pytest.fixture
async def _task_guard() -> object:
    yield None
    await asyncio.sleep(0)
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    if left:
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        names = ", ".join(sorted(t.get_name() for t in left))
        pytest.fail(f"test left {len(left)} asyncio task(s) pending: {names}")
