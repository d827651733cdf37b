"""The coverage-guided runner (atheris) in CI: two identity targets briefly, and the canary.

`make fuzz` runs every target for longer; this only shows that the runner works here and
that a failing property fails the run (a runner that cannot fail would prove nothing).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.fuzz.coverage_guided import ROOT, targets

pytest.importorskip("atheris", reason="atheris is not installed: pip install atheris (`make fuzz`)")


def _run(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tests.unit.fuzz.coverage_guided", "--artifacts", str(tmp)]
    return subprocess.run(
        [*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_every_property_of_the_fuzz_modules_is_a_target() -> None:
    found = targets()
    assert "test_identity_fuzz:test_the_identity_server_answers_any_request_with_a_status" in found
    assert len({t.split(":")[0] for t in found}) >= 5  # decoders, h2, http1, identity, policy


def test_identity_targets_run_clean_for_a_few_seconds(tmp_path: Path) -> None:
    done = _run(
        "--seconds",
        "3",
        "test_identity_fuzz:test_the_identity_server_answers_any_request_with_a_status",
        "test_identity_fuzz:test_a_local_token_proves_only_what_was_minted",
        tmp=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 of 2 targets ran clean" in done.stdout


def test_a_false_property_fails_the_run_with_its_input(tmp_path: Path) -> None:
    done = _run("--seconds", "30", "canary:prop_no_input_starts_with_a_zero_byte", tmp=tmp_path)
    assert done.returncode == 1, done.stdout
    assert "canary: libFuzzer found a zero byte" in done.stdout
    assert list(tmp_path.glob("crash-*")), "libFuzzer keeps the failing input"
