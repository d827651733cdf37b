"""The lazy group: a table of "module:attribute", listed without importing, imported on use."""

from __future__ import annotations

import sys

import click
import pytest
from click.testing import CliRunner

from lacewing.cli.lazy import LazyGroup

TABLE = {
    "version": "lacewing.cli.commands.version:command",
    "ghost": "lacewing.cli.commands.no_such_module:command",
}


@click.group(cls=LazyGroup, table=TABLE)
def group() -> None:
    """A test group."""


def test_missing_modules_are_not_listed_nor_found() -> None:
    ctx = click.Context(group)
    assert group.list_commands(ctx) == ["version"]
    assert group.get_command(ctx, "ghost") is None
    assert group.get_command(ctx, "absent") is None


def test_a_command_is_imported_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "lacewing.cli.commands.version", raising=False)
    ctx = click.Context(group)
    group.list_commands(ctx)
    assert "lacewing.cli.commands.version" not in sys.modules
    command = group.get_command(ctx, "version")
    assert isinstance(command, click.Command) and command.name == "version"
    assert "lacewing.cli.commands.version" in sys.modules


def test_an_unknown_subcommand_is_clicks_usage_error() -> None:
    result = CliRunner().invoke(group, ["ghost"])
    assert result.exit_code == 2 and "No such command 'ghost'" in result.output
