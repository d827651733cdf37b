"""Fixtures for network-namespace "pods" (tests marked `root`); the bed is in tests/support/netns.

- At session start (as root), namespaces left behind by an earlier, interrupted run are swept.
- `netns_cluster`: a fresh node for one test; `netns_module_cluster`: one node shared by a
  module's tests (proxies take a second to start). Both stop every process they started and
  delete their namespaces on teardown, also when the test failed or was interrupted; when a
  test failed, the tail of every process log is printed (pytest shows it in the report).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pluggy
import pytest

from tests.support.netns.bed import Cluster, sweep


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.name == "posix" and os.geteuid() == 0 and shutil.which("ip"):
        sweep()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        item.stash[_FAILED] = True


_FAILED = pytest.StashKey[bool]()


def _report_logs(cluster: Cluster) -> None:
    for pod in cluster.pods.values():
        for proc in pod.procs:
            print(f"----- {proc.name} (pid {proc.pid}) log tail -----")
            print(proc.log_tail(40))


@pytest.fixture
def netns_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """A node namespace with a bridge; add pods with `cluster.add_pod(name)`."""
    with Cluster(tmp_path / "netns-logs") as cluster:
        yield cluster
        if request.node.stash.get(_FAILED, False):
            _report_logs(cluster)


@pytest.fixture(scope="module")
def netns_module_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Like `netns_cluster`, shared by the tests of one module."""
    with Cluster(tmp_path_factory.mktemp("netns-logs")) as cluster:
        yield cluster
        failed = any(item.stash.get(_FAILED, False) for item in request.session.items)
        if failed:
            _report_logs(cluster)
