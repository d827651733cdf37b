"""`lacewing check` when there is no cluster to talk to: one clear failure and a hint, no trace."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.cli.conftest import CliResult
from tests.unit.healthcheck.version_server import serve_version_document

from lacewing import __version__
from lacewing.cli.commands.check import parse_duration
from lacewing.errors import UsageError

Lacewing = Callable[..., CliResult]
X = "\N{MULTIPLICATION SIGN}"


def _unreachable_kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters:\n- name: gone\n  cluster:\n    server: https://127.0.0.1:1\n"
        "    insecure-skip-tls-verify: true\n"
        "users:\n- name: me\n  user:\n    token: abc\n"
        "contexts:\n- name: gone\n  context:\n    cluster: gone\n    user: me\n"
    )
    return path


def test_no_kubeconfig_fails_the_first_check_with_a_hint(lacewing: Lacewing) -> None:
    result = lacewing("check", "--pre", "--skip-version-check")
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[:3] == ["kubernetes-api", "--------------", f"{X} can initialize the client"]
    assert lines[3].startswith("    no Kubernetes configuration found")
    assert "KUBECONFIG" in lines[4]
    assert lines[-1] == f"Status check results are {X}"
    assert "kubernetes-version" not in result.out  # it needs the API
    assert "Traceback" not in result.out + result.err


def test_unreachable_api_fails_can_query(lacewing: Lacewing, tmp_path: Path) -> None:
    kubeconfig = _unreachable_kubeconfig(tmp_path)
    result = lacewing("--kubeconfig", str(kubeconfig), "check", "--skip-version-check")
    assert result.code == 1
    assert f"√ can initialize the client\n{X} can query the Kubernetes API\n" in result.out
    assert "cannot reach the Kubernetes API at https://127.0.0.1:1" in result.out
    assert "lacewing-existence" not in result.out
    assert "Traceback" not in result.out + result.err


def test_json_output_when_unreachable(
    lacewing: Lacewing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = str(_unreachable_kubeconfig(tmp_path))
    with serve_version_document(json.dumps({"stable": __version__}).encode()) as url:
        monkeypatch.setenv("LACEWING_VERSION_CHECK_URL", url)
        result = lacewing("--kubeconfig", kubeconfig, "check", "-o", "json")
    document = json.loads(result.out)
    assert result.code == 1
    assert document["success"] is False
    assert [c["categoryName"] for c in document["categories"]] == [
        "kubernetes-api",
        "lacewing-version",
    ]
    api = document["categories"][0]["checks"]
    assert [c["result"] for c in api] == ["success", "error"]
    assert api[1]["hint"] and api[1]["error"].startswith("cannot reach the Kubernetes API")
    assert document["categories"][1]["checks"] == [
        {"description": "can determine the latest version", "result": "success"},
        {"description": "cli is up-to-date", "result": "success"},
    ]


def test_short_output_when_unreachable(lacewing: Lacewing, tmp_path: Path) -> None:
    kubeconfig = str(_unreachable_kubeconfig(tmp_path))
    result = lacewing("--kubeconfig", kubeconfig, "check", "-o", "short", "--skip-version-check")
    header = "kubernetes-api\n--------------\n"
    assert result.out.startswith(f"{header}{X} can query the Kubernetes API\n")
    assert "√" not in result.out.replace("Status check results are √", "")


def test_bad_wait_is_one_line(lacewing: Lacewing) -> None:
    result = lacewing("check", "--wait", "soon")
    assert result.code == 2
    assert result.err.splitlines() == [
        "Error: invalid duration 'soon' for --wait",
        "use a duration like 5m, 90s or 0",
    ]


def test_the_console_script_exits_nonzero(tmp_path: Path) -> None:
    """The installed `lacewing` command, as a user runs it (a separate process)."""
    script = Path(sys.executable).parent / "lacewing"
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "LACEWING_SKIP_VERSION_CHECK": "1",
    }
    proc = subprocess.run(
        [str(script), "check", "--pre"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 1
    assert f"{X} can initialize the client" in proc.stdout
    assert proc.stdout.endswith(f"Status check results are {X}\n")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300.0), ("1m30s", 90.0), ("0", 0.0), ("90", 90.0), ("1.5h", 5400.0), ("250ms", 0.25)],
)
def test_wait_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 m", "m5", "-1s", "5x", "1m30"])
def test_bad_wait_durations(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(text)
