"""The Debian packages the tests need: named in the README, installed by CI, said when missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.tools import DEBIAN_PACKAGES, missing

ROOT = Path(__file__).resolve().parents[2]


def _readme_install_line() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    found = [line.split() for line in lines if line.strip().startswith("apt-get install iptables")]
    assert len(found) == 1, "the README lists the tests' packages in one `apt-get install` line"
    return found[0][2:]


def test_every_tool_package_is_in_the_readme_and_installed_by_ci() -> None:
    listed = set(_readme_install_line())
    ci = (ROOT / ".ci" / "run").read_text().split()
    for tool, package in DEBIAN_PACKAGES.items():
        assert package in listed, f"README does not list {package} (for {tool})"
        assert package in ci, f".ci/run does not install {package} (for {tool})"


def test_a_missing_tool_names_its_package_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    reason = missing("tcpdump")
    assert reason == "needs tcpdump: apt-get install tcpdump (Debian)"
    monkeypatch.undo()
    assert missing("sh") is None
