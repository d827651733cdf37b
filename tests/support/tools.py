"""The command-line tools tests run, and the Debian package each comes from.

A test that needs one calls `require("tcpdump")` first: where the tool is not on PATH it is
skipped with one line that says what to install (`needs tcpdump: apt-get install tcpdump`),
instead of failing later on a file the tool never wrote. The README's list of Debian
packages for the tests is this table (tests/unit/test_readme_tools.py keeps them in step).
"""

from __future__ import annotations

import shutil

import pytest

__all__ = ["DEBIAN_PACKAGES", "missing", "require"]

DEBIAN_PACKAGES = {
    "ip": "iproute2",
    "iptables": "iptables",
    "curl": "curl",
    "tcpdump": "tcpdump",
    "haproxy": "haproxy",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "chromium": "chromium",
}


def missing(tool: str) -> str | None:
    """None if `tool` is on PATH, else the one line that says which package to install."""
    if shutil.which(tool) is not None:
        return None
    return f"needs {tool}: apt-get install {DEBIAN_PACKAGES.get(tool, tool)} (Debian)"


def require(tool: str) -> None:
    """Skip the calling test, with `missing(tool)`'s line, if `tool` is not on PATH."""
    reason = missing(tool)
    if reason is not None:
        pytest.skip(reason)
