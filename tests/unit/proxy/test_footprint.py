"""What a sidecar process loads: the CLI, HTTP/2 and `cryptography` stay out of it.

Each check runs in a fresh interpreter, since this test process has imported everything.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


def _modules_after(code: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)), file=sys.__stdout__)\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env
    )
    return set(done.stdout.split()), done.stderr


@pytest.mark.parametrize("module", ["lacewing.proxy.main", "lacewing.proxy.identity.sidecar"])
def test_the_proxy_imports_neither_http2_nor_the_cli(module: str) -> None:
    loaded, err = _modules_after(f"import {module}")
    assert module in loaded, err
    assert (
        not {"h2", "hpack", "lacewing.proxy.h2", "click", "lacewing.cli", "cryptography"} & loaded
    )


def test_lacewing_proxy_reports_bad_config_in_one_line_without_click() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['lacewing', 'proxy']\n"
        "from lacewing.cli.entry import main\n"
        "try:\n    main()\n"
        "except SystemExit as exc:\n    print('exit', exc.code, file=sys.__stdout__)\n"
    )
    env = {"LACEWING_PROXY_INBOUND_LISTEN_ADDR": "nonsense", "PATH": "/usr/bin:/bin"}
    loaded, err = _modules_after(code, env)
    assert "exit" in loaded and "2" in loaded  # ConfigError's exit code
    assert "click" not in loaded
    first = err.splitlines()[0]
    assert first.startswith("Error: LACEWING_PROXY_INBOUND_LISTEN_ADDR: 'nonsense'"), err
    assert "Traceback" not in err
