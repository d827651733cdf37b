"""`lacewing proxy-init` flag handling through the real entry point: one line per mistake."""

from __future__ import annotations

import pytest

from lacewing.cli.main import main


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        (["--inbound-ports-to-ignore", "22,ssh"], "Error: --inbound-ports-to-ignore: 'ssh' is"),
        (["--outbound-ports-to-ignore", "0"], "Error: --outbound-ports-to-ignore: 0 is not"),
        (["--subnets-to-ignore", "10.0.0.0/40"], "Error: --subnets-to-ignore: '10.0.0.0/40'"),
        (["--incoming-proxy-port", "70000"], "Error: --incoming-proxy-port: 70000 is not"),
        (["--iptables-mode", "bpf"], "Error: Invalid value for '--iptables-mode'"),
        (["--proxy-uid", "me"], "Error: Invalid value for '--proxy-uid'"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    argv: list[str], first_line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["proxy-init", "--dry-run", *argv])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0].startswith(first_line), lines
    if "--help" in lines[0]:  # click's own, made one line by the entry point
        assert len(lines) == 1
    else:  # ours: the error and one line of hint
        assert len(lines) == 2
