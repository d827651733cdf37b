"""The fault suite (root): a real local cluster under counted load, one bounded fault at a time.

`make test` runs the faults marked `short` (a few seconds each, about a minute with the
cluster); `make faults` sets LACEWING_FAULTS=full, runs every fault in `FAULTS` and writes
the report (tests/results/faults-<date>.md, or $LACEWING_FAULTS_REPORT_DIR). Each fault is
its own test and fails with the row's problems; see tests/faults/runner.py for what a row
must show to pass. The cluster is `lwflt` + the run's PID suffix (or
$LACEWING_FAULTS_CLUSTER); it is brought down after the module, whatever happened.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.faults.catalogue import FAULTS
from tests.faults.cluster import REPO, FaultCluster
from tests.faults.report import write
from tests.faults.runner import Fault, Row, run_fault
from tests.integration.local.conftest import run_name
from tests.support.tools import require

pytestmark = [pytest.mark.root]

FULL = os.environ.get("LACEWING_FAULTS") == "full"
# another name lets a second suite run beside `make test`'s short one (same machine)
NAME = os.environ.get("LACEWING_FAULTS_CLUSTER") or run_name("lwflt")
CHOSEN = [f for f in FAULTS if FULL or f.short]
ROWS: list[Row] = []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    c = FaultCluster(NAME, tmp_path_factory.mktemp("faults"))
    try:
        c.up()
        yield c
    finally:
        c.down()
        if FULL and ROWS:
            directory = Path(os.environ.get("LACEWING_FAULTS_REPORT_DIR", REPO / "tests/results"))
            path = write(ROWS, directory, "make faults")
            print(f"\nfault report: {path}")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", CHOSEN, ids=[f.name.replace(" ", "-") for f in CHOSEN])
def test_fault(fault: Fault, request: pytest.FixtureRequest) -> None:
    for tool in fault.tools:  # before the cluster: a missing tool skips only its faults
        require(tool)
    cluster: FaultCluster = request.getfixturevalue("cluster")
    row = run_fault(cluster, fault)
    ROWS.append(row)
    c = row.counts
    assert row.passed, (
        f"{fault.name}: sent {c.sent}, ok {c.ok}, failed {c.failed} (in flight {c.in_flight}, "
        f"expected {c.expected}, lost {c.beyond}): " + "; ".join(row.problems)
    )
