"""Run the real `lacewing` entry point in-process, isolated from this machine's kube config.

Every test here gets: no `KUBECONFIG`, a `HOME` without `~/.kube/config`, no in-cluster
environment, and a version source on a closed loopback port, so nothing can reach a real
cluster or the internet. `lacewing(*args)` runs `lacewing.cli.main.main` (the function the
console script calls, which is the only place that exits) and returns its exit code and output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lacewing.cli.main import main


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LACEWING_VERSION_CHECK_URL", "http://127.0.0.1:9/version.json")
    monkeypatch.delenv("LACEWING_SKIP_VERSION_CHECK", raising=False)


@pytest.fixture
def lacewing(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = 0
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
