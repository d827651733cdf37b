"""The entry point: global flags anywhere, one-line errors, exit codes."""

from __future__ import annotations

import pytest

from lacewing.cli.main import COMMANDS, hoist_global_flags, main


def test_global_flags_after_the_subcommand_move_to_the_front() -> None:
    argv = ["check", "--pre", "--kubeconfig", "k.yaml", "-L", "mesh", "--context=prod"]
    assert hoist_global_flags(argv) == [
        "--kubeconfig",
        "k.yaml",
        "-L",
        "mesh",
        "--context=prod",
        "check",
        "--pre",
    ]


def test_flags_after_double_dash_belong_to_the_command() -> None:
    argv = ["local", "exec", "web", "--", "kubectl", "--context", "x"]
    assert hoist_global_flags(argv) == argv


def test_unknown_flag_is_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["version", "--bogus"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "No such option '--bogus'" in err and "lacewing version --help" in err


def test_unknown_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "Error: No such command 'frobnicate'. (see 'lacewing --help')"
    )


def test_version_client_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["version", "--client"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("Client version: ")


def test_every_command_in_the_table_names_a_module_and_attribute() -> None:
    for name, target in COMMANDS.items():
        module, sep, attr = target.partition(":")
        assert sep and module.startswith("lacewing.cli.commands.") and attr, name
