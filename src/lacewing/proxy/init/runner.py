"""Apply a `RuleSet` through the host's iptables, idempotently.

How it works, in three steps:

1. Pick the backend. `choose_mode` is pure: an explicit `--iptables-mode` wins; otherwise a
   backend that already holds our chains, then the only backend holding any nat rules, then
   what `iptables --version` says the host's `iptables` is (`nf_tables` or `legacy`), and last
   whichever binary exists (nft first, with a warning). A mode's binary is `iptables-<mode>`,
   or plain `iptables` when its version says it is that mode.
2. Read the nat table (`iptables -t nat -S`) and plan. `plan_install` / `plan_clean` are pure:
   they compare the lines iptables prints with the lines our rules render to. A chain that
   already holds exactly our rules is left alone; otherwise it is created (`-N`) or flushed
   (`-F`) and refilled. Each jump must appear exactly once: extra or stale copies are deleted
   (`-D`) before one is appended, so running twice leaves one set of rules.
3. Run the commands (or print them with `--dry-run`). A failing command raises
   `RuntimeEnvError` naming the command and iptables' own message.

All contact with the machine goes through the small `Host` protocol; tests pass a fake.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from lacewing.errors import RuntimeEnvError, UsageError
from lacewing.proxy.init.rules import INBOUND_CHAIN, OUTBOUND_CHAIN, TABLE, RuleSet

__all__ = [
    "MODES",
    "Backend",
    "Command",
    "Completed",
    "Host",
    "IptablesMode",
    "Outcome",
    "SystemHost",
    "choose_mode",
    "execute",
    "parse_mode",
    "plan_clean",
    "plan_install",
    "resolve_backend",
]

IptablesMode = Literal["nft", "legacy"]

# mode -> (its own binary, the word `iptables --version` shows for it)
MODES: dict[IptablesMode, tuple[str, str]] = {
    "nft": ("iptables-nft", "nf_tables"),
    "legacy": ("iptables-legacy", "legacy"),
}
LOCK_WAIT = ("-w", "5")  # legacy iptables shares /run/xtables.lock across namespaces
OWN_CHAINS = (INBOUND_CHAIN, OUTBOUND_CHAIN)
NOT_PRIVILEGED_HINT = (
    "run it as root (in Kubernetes: an init container with the NET_ADMIN and NET_RAW "
    "capabilities), or add --dry-run to only print the commands"
)

CAP_NET_ADMIN = 12
Command = tuple[str, ...]  # iptables arguments after the binary and the lock flags


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


class Host(Protocol):
    """What the runner needs from the machine."""

    def which(self, name: str) -> str | None: ...

    def run(self, argv: Sequence[str]) -> Completed: ...

    def is_privileged(self) -> bool: ...


class SystemHost:
    """The real machine: PATH lookups, subprocesses, and the process's capabilities."""

    def which(self, name: str) -> str | None:
        return shutil.which(name)

    def run(self, argv: Sequence[str]) -> Completed:
        proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
        return Completed(proc.returncode, proc.stdout, proc.stderr)

    def is_privileged(self) -> bool:
        """CAP_NET_ADMIN in the effective set (root in a container may lack it)."""
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("CapEff:"):
                        return bool(int(line.split()[1], 16) & (1 << CAP_NET_ADMIN))
        except OSError:
            pass
        return os.geteuid() == 0


@dataclass(frozen=True)
class Backend:
    mode: IptablesMode
    binary: str
    reason: str
    warning: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What `execute` did (or, for a dry run, would do)."""

    backend: Backend
    commands: tuple[Command, ...]
    dry_run: bool

    def argv(self, command: Command) -> list[str]:
        return [self.backend.binary, *LOCK_WAIT, *command]


def choose_mode(
    requested: IptablesMode | None,
    default_version: str | None,
    tables: dict[IptablesMode, list[str] | None],
) -> tuple[IptablesMode, str]:
    """Pick the backend; `tables[mode]` is its `-t nat -S` output, None if unreadable."""
    if requested is not None:
        return requested, f"--iptables-mode {requested}"
    readable = {mode: lines for mode, lines in tables.items() if lines is not None}
    ours = [mode for mode, lines in readable.items() if _own_chains(lines)]
    if len(ours) == 1:
        return ours[0], f"our chains are already in iptables-{ours[0]}"
    used = [mode for mode, lines in readable.items() if any(x.startswith("-A ") for x in lines)]
    if len(used) == 1:
        return used[0], f"only iptables-{used[0]} holds nat rules"
    if default_version is not None:
        for mode, (_, marker) in MODES.items():
            if f"({marker})" in default_version:
                return mode, f"the host's iptables is {marker}"
    return "nft", "`iptables` is not on PATH"


def resolve_backend(requested: IptablesMode | None, host: Host, privileged: bool) -> Backend:
    """Find the binaries, read each backend's nat table if allowed, and choose one."""
    plain = host.which("iptables")
    default_version = None
    if plain is not None:
        version = host.run(["iptables", "--version"])
        default_version = version.stdout + version.stderr
    binaries: dict[IptablesMode, str] = {}
    for mode, (own, marker) in MODES.items():
        if host.which(own) is not None:
            binaries[mode] = own
        elif default_version is not None and f"({marker})" in default_version:
            binaries[mode] = "iptables"
    if not binaries:
        raise RuntimeEnvError(
            "no iptables on PATH (looked for iptables, iptables-nft, iptables-legacy)",
            hint="install the iptables package (Debian/Alpine: iptables)",
        )
    if requested is not None and requested not in binaries:
        other = next(iter(binaries))
        raise RuntimeEnvError(
            f"--iptables-mode {requested}: {MODES[requested][0]} is not on PATH",
            hint=f"install it, or use --iptables-mode {other} ({binaries[other]} is present)",
        )
    tables: dict[IptablesMode, list[str] | None] = {
        mode: read_nat_table(host, binary) if privileged else None
        for mode, binary in binaries.items()
    }
    mode, reason = choose_mode(requested, default_version, tables)
    if mode not in binaries:  # detected mode has no binary: fall back to the one there is
        fallback = next(iter(binaries))
        reason = f"{MODES[mode][0]} is not on PATH, falling back to {binaries[fallback]}"
        return Backend(fallback, binaries[fallback], reason, warning=reason)
    warning = f"{reason}; using {binaries[mode]}" if plain is None else None
    return Backend(mode, binaries[mode], reason, warning)


def read_nat_table(host: Host, binary: str) -> list[str] | None:
    result = host.run([binary, *LOCK_WAIT, "-t", TABLE, "-S"])
    if result.returncode != 0:
        return None
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def plan_install(ruleset: RuleSet, current: list[str]) -> list[Command]:
    """Commands that make the nat table hold exactly one copy of `ruleset`."""
    commands: list[Command] = []
    for chain, rules in ruleset.chains.items():
        wanted = [rule.render() for rule in rules]
        present = [line for line in current if line.startswith(f"-A {chain} ")]
        if f"-N {chain}" in current:
            if present == wanted:
                continue
            commands.append(("-t", TABLE, "-F", chain))
        else:
            commands.append(("-t", TABLE, "-N", chain))
        commands += [("-t", TABLE, "-A", rule.chain, *rule.spec()) for rule in rules]
    for jump in ruleset.jumps:
        present = [line for line in current if _jump_target(line) == jump.target]
        if present == [jump.render()]:
            continue
        commands += [_delete(line) for line in present]
        commands.append(("-t", TABLE, "-A", jump.chain, *jump.spec()))
    return commands


def plan_clean(current: list[str]) -> list[Command]:
    """Commands that remove our chains and every jump into them."""
    commands = [_delete(line) for line in current if _jump_target(line) is not None]
    for chain in _own_chains(current):
        commands.append(("-t", TABLE, "-F", chain))
    for chain in _own_chains(current):
        commands.append(("-t", TABLE, "-X", chain))
    return commands


def execute(
    ruleset: RuleSet,
    *,
    mode: IptablesMode | None = None,
    clean: bool = False,
    dry_run: bool = False,
    host: Host | None = None,
    warn: Callable[[str], None] = lambda _line: None,
) -> Outcome:
    """Install (or with `clean`, remove) the rules; with `dry_run` only plan them."""
    host = host or SystemHost()
    privileged = host.is_privileged()
    if not privileged and not dry_run:
        raise RuntimeEnvError(
            "proxy-init must run as root (or with CAP_NET_ADMIN) to change iptables rules",
            hint=NOT_PRIVILEGED_HINT,
        )
    backend = resolve_backend(mode, host, privileged)
    if backend.warning:
        warn(f"proxy-init: {backend.warning}")
    current: list[str] = []
    if privileged:
        table = read_nat_table(host, backend.binary)
        if table is None:
            result = host.run([backend.binary, *LOCK_WAIT, "-t", TABLE, "-S"])
            raise RuntimeEnvError(
                f"could not read the nat table with {backend.binary}: {_message(result.stderr)}",
                hint="check that the kernel has iptables nat support (modules ip_tables, "
                "iptable_nat or nf_tables)",
            )
        current = table
    commands = plan_clean(current) if clean else plan_install(ruleset, current)
    outcome = Outcome(backend, tuple(commands), dry_run)
    if dry_run:
        return outcome
    for command in commands:
        argv = outcome.argv(command)
        result = host.run(argv)
        if result.returncode != 0:
            raise RuntimeEnvError(
                f"`{shlex.join(argv)}` failed: {_message(result.stderr)}",
                hint="run with --dry-run to see every command; try the other "
                "--iptables-mode if this backend is not the one the host uses",
            )
    return outcome


def parse_mode(text: str | None) -> IptablesMode | None:
    if text is None:
        return None
    for mode in MODES:
        if text == mode:
            return mode
    raise UsageError(f"--iptables-mode {text!r} is not nft or legacy", hint="use nft or legacy")


def _own_chains(lines: list[str]) -> list[str]:
    return [
        line.split()[1]
        for line in lines
        if line.startswith("-N ") and line.split()[1] in OWN_CHAINS
    ]


def _jump_target(line: str) -> str | None:
    if not line.startswith("-A "):
        return None
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    for index, word in enumerate(words[:-1]):
        if word in ("-j", "--jump", "-g", "--goto"):
            target = words[index + 1]
            return target if target in OWN_CHAINS else None
    return None


def _delete(line: str) -> Command:
    words = shlex.split(line)
    return ("-t", TABLE, "-D", *words[1:])


def _message(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no message)"
