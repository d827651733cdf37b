"""A click group whose subcommands come from a table and are imported on first use.

The table maps a subcommand's name to `"module:attribute"` of a click command. Listing the
group (`--help`) only asks whether each module can be found (`importlib.util.find_spec`, which
does not run it); running a subcommand imports its module then. So `lacewing version` does not
pay for the proxy's or the Kubernetes client's imports, and a part that is missing cannot
break the others. `lacewing` itself (`cli.main.COMMANDS`) and `lacewing controller`
(`cli.commands.controller.COMPONENTS`) are both such groups:

    @click.group("controller", cls=LazyGroup, table=COMPONENTS)
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any

import click

__all__ = ["LazyGroup"]


def _importable(target: str) -> bool:
    return importlib.util.find_spec(target.partition(":")[0]) is not None


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use from `table`."""

    def __init__(self, *args: Any, table: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.table = table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, target in self.table.items() if _importable(target)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.table.get(cmd_name)
        if target is None or not _importable(target):
            return None
        module_name, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command
