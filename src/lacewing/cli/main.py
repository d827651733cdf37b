"""Entry point of the `lacewing` command.

Subcommands are a table (`COMMANDS`): name -> "module:attribute" of a click command. The group
(`cli.lazy.LazyGroup`) imports a command's module only when that command runs, so
`lacewing version` does not pay for the proxy's or the Kubernetes client's imports, and a part
that is missing or broken cannot break the others.

`main()` is the only place that exits. It turns a `LacewingError` into one line on stderr
(plus one line of hint) and its exit code; a click usage error keeps click's one-line message.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from lacewing.cli.context import DEFAULT_NAMESPACE, GlobalOptions
from lacewing.cli.lazy import LazyGroup
from lacewing.errors import LacewingError

COMMANDS: dict[str, str] = {
    "version": "lacewing.cli.commands.version:command",
    "check": "lacewing.cli.commands.check:command",
    "install": "lacewing.cli.commands.install:install_command",
    "upgrade": "lacewing.cli.commands.install:upgrade_command",
    "uninstall": "lacewing.cli.commands.install:uninstall_command",
    "inject": "lacewing.cli.commands.inject:inject_command",
    "uninject": "lacewing.cli.commands.inject:uninject_command",
    "identity": "lacewing.cli.commands.identity:command",
    "authz": "lacewing.cli.commands.authz:command",
    "diagnostics": "lacewing.cli.commands.diagnostics:command",
    "proxy": "lacewing.cli.commands.proxy:command",
    "proxy-init": "lacewing.cli.commands.proxy_init:command",
    "controller": "lacewing.cli.commands.controller:command",
    "local": "lacewing.cli.commands.local:command",
    "demo": "lacewing.cli.commands.demo:command",
    "viz": "lacewing.cli.commands.viz:command",
}


@click.group(
    cls=LazyGroup, table=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--kubeconfig", envvar="KUBECONFIG", help="Path to the kubeconfig file.")
@click.option("--context", "kube_context", help="Name of the kubeconfig context to use.")
@click.option(
    "-L",
    "--lacewing-namespace",
    "namespace",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    help="Namespace in which lacewing is installed.",
)
@click.pass_context
def cli(
    ctx: click.Context, kubeconfig: str | None, kube_context: str | None, namespace: str
) -> None:
    """lacewing: an ultralight service mesh for Kubernetes."""
    ctx.obj = GlobalOptions(kubeconfig=kubeconfig, context=kube_context, namespace=namespace)


# Global flags, with whether each takes a value. Like kubectl's and Linkerd's persistent
# flags they may be given anywhere before `--`: `lacewing check --kubeconfig F` works.
GLOBAL_FLAGS: dict[str, bool] = {
    "--kubeconfig": True,
    "--context": True,
    "-L": True,
    "--lacewing-namespace": True,
}


def hoist_global_flags(argv: list[str]) -> list[str]:
    """Move global flags found after the subcommand to the front, where click expects them.

    Stops at `--` so that `lacewing local exec POD -- cmd --context x` keeps its command intact.
    """
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_FLAGS:
            if "=" in arg or not GLOBAL_FLAGS[name] or i + 1 >= len(argv):
                hoisted.append(arg)
                i += 1
            else:
                hoisted.extend(argv[i : i + 2])
                i += 2
            continue
        rest.append(arg)
        i += 1
    return hoisted + rest


def _usage_error_line(exc: click.UsageError) -> str:
    """One line for a bad flag or argument: what is wrong and where to look."""
    command = exc.ctx.command_path if exc.ctx is not None else "lacewing"
    return f"Error: {exc.format_message()} (see '{command} --help')"


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; the only function that exits the process."""
    args = hoist_global_flags(sys.argv[1:] if argv is None else list(argv)) or ["--help"]
    try:
        code = cli.main(args=args, prog_name="lacewing", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        click.echo(_usage_error_line(exc), err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LacewingError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        if exc.hint:
            click.echo(
                f"    see: {exc.hint}" if exc.hint.startswith("http") else exc.hint, err=True
            )
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
