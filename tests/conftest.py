"""Suite-wide rules.

- Tests marked `root` need root, Linux network namespaces and iptables; they are skipped, with
  the reason, where those are missing (CI runs as root, so there they run).
- The suite refuses to run on compiled proxy modules (mypyc, `lacewing.proxy.build`) older
  than their sources: an editable install's extensions shadow the .py, so an edit would
  otherwise go untested (`make venv` rebuilds them).
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


def pytest_sessionstart(session: pytest.Session) -> None:
    from importlib.util import find_spec
    from pathlib import Path

    from lacewing.proxy.build import current

    for name in current().compiled:
        spec = find_spec(name)
        ext = Path(spec.origin) if spec is not None and spec.origin else None
        src = ext.parent / f"{name.rsplit('.', 1)[1]}.py" if ext else None
        if ext and src and src.exists() and src.stat().st_mtime > ext.stat().st_mtime:
            pytest.exit(f"{src} is newer than its compiled module: run `make venv`", returncode=2)


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
