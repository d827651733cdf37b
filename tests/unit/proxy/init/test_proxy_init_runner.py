"""The runner against a fake host whose iptables keeps a nat table in memory.

The fake understands the commands the runner issues (-S, -N, -F, -X, -A, -D) and prints rules
back the way `iptables -S` does, so "twice leaves one set" and "clean removes everything" are
checked end to end here; tests/integration/proxy/test_proxy_init_netns.py does the same
against the real iptables binaries in a network namespace.
"""

from __future__ import annotations

import io
import shlex
from collections.abc import Sequence

import pytest

from lacewing.cli.commands.proxy_init import ProxyInitCommandOptions, run
from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import RuntimeEnvError
from lacewing.proxy.init.rules import ProxyInitOptions, build_ruleset, parse_port_list
from lacewing.proxy.init.runner import (
    Completed,
    IptablesMode,
    choose_mode,
    execute,
    plan_clean,
    plan_install,
)

VERSIONS = {"nft": "iptables v1.8.9 (nf_tables)", "legacy": "iptables v1.8.9 (legacy)"}


def render(words: list[str]) -> str:
    """As `iptables -S` prints a rule: comments always in double quotes."""
    return " ".join(
        f'"{w}"' if i and words[i - 1] == "--comment" else w for i, w in enumerate(words)
    )


class FakeTable:
    """A nat table: chain names in order of creation and `-A` lines in order."""

    def __init__(self) -> None:
        self.chains: list[str] = []
        self.rules: list[str] = []

    def dump(self) -> list[str]:
        builtin = [f"-P {c} ACCEPT" for c in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")]
        return [*builtin, *(f"-N {c}" for c in self.chains), *self.rules]

    def apply(self, args: list[str]) -> tuple[int, str]:
        assert args[:2] == ["-t", "nat"], args
        op, chain, rest = args[2], args[3] if len(args) > 3 else "", args[4:]
        line = render(["-A", chain, *rest])
        if op == "-N":
            if chain in self.chains:
                return 1, "iptables: Chain already exists."
            self.chains.append(chain)
        elif op == "-F":
            self.rules = [r for r in self.rules if not r.startswith(f"-A {chain} ")]
        elif op == "-X":
            if any(f"-j {chain}" in r for r in self.rules):
                return 1, "iptables: Too many links."
            self.chains.remove(chain)
        elif op == "-A":
            self.rules.append(line)
        elif op == "-D":
            if line not in self.rules:
                return 1, "iptables: Bad rule (does a matching rule exist in that chain?)."
            self.rules.remove(line)
        else:
            raise AssertionError(f"unexpected iptables operation {args}")
        return 0, ""


class FakeHost:
    def __init__(
        self,
        binaries: Sequence[str] = ("iptables", "iptables-nft", "iptables-legacy"),
        default: IptablesMode = "nft",
        privileged: bool = True,
    ) -> None:
        self.binaries = set(binaries)
        self.default = default
        self.privileged = privileged
        self.tables: dict[IptablesMode, FakeTable] = {"nft": FakeTable(), "legacy": FakeTable()}
        self.calls: list[list[str]] = []

    def which(self, name: str) -> str | None:
        return f"/usr/sbin/{name}" if name in self.binaries else None

    def is_privileged(self) -> bool:
        return self.privileged

    def run(self, argv: Sequence[str]) -> Completed:
        argv = list(argv)
        self.calls.append(argv)
        binary, args = argv[0], argv[1:]
        assert binary in self.binaries
        mode: IptablesMode = (
            self.default if binary == "iptables" else "nft" if binary.endswith("nft") else "legacy"
        )
        if args == ["--version"]:
            return Completed(0, VERSIONS[mode] + "\n", "")
        assert args[:2] == ["-w", "5"], argv
        table = self.tables[mode]
        if args[2:] == ["-t", "nat", "-S"]:
            return Completed(0, "\n".join(table.dump()) + "\n", "")
        code, err = table.apply(args[2:])
        return Completed(code, "", err)


def _install(host: FakeHost, **kw: object) -> list[str]:
    ruleset = build_ruleset(ProxyInitOptions())
    outcome = execute(ruleset, host=host, **kw)  # type: ignore[arg-type]
    return [shlex.join(outcome.argv(c)) for c in outcome.commands]


def test_install_twice_leaves_one_set_and_the_second_run_changes_nothing() -> None:
    host = FakeHost()
    first = _install(host)
    after_first = host.tables["nft"].dump()
    second = _install(host)
    assert first and second == []
    assert host.tables["nft"].dump() == after_first
    jumps = [r for r in after_first if "-j PROXY_INIT_" in r]
    assert len(jumps) == 2
    assert host.tables["legacy"].dump() == FakeTable().dump()


def test_changed_options_flush_and_refill_without_duplicating_jumps() -> None:
    host = FakeHost()
    _install(host)
    ruleset = build_ruleset(ProxyInitOptions(inbound_ports_to_ignore=parse_port_list("22", "--x")))
    execute(ruleset, host=host)
    rules = host.tables["nft"].rules
    assert sum("-j PROXY_INIT_REDIRECT" in r for r in rules) == 1
    assert sum("-j PROXY_INIT_OUTPUT" in r for r in rules) == 1
    assert any("--dports 4190,4191,22 " in r for r in rules)
    assert not any("--dports 4190,4191 " in r for r in rules)


def test_duplicated_and_stale_jumps_are_replaced_by_one() -> None:
    ruleset = build_ruleset(ProxyInitOptions())
    jump = ruleset.jumps[0].render()
    current = [
        "-N PROXY_INIT_REDIRECT",
        jump,
        jump,
        '-A PREROUTING -m comment --comment "old" -j PROXY_INIT_REDIRECT',
    ]
    commands = plan_install(ruleset, current)
    deletes = [c for c in commands if c[2] == "-D"]
    assert len(deletes) == 3
    assert deletes[2][-4:] == ("--comment", "old", "-j", "PROXY_INIT_REDIRECT")
    appended = [c for c in commands if c[2] == "-A" and c[3] == "PREROUTING"]
    assert len(appended) == 1


def test_clean_removes_jumps_then_chains_and_a_second_clean_does_nothing() -> None:
    host = FakeHost()
    _install(host)
    execute(build_ruleset(ProxyInitOptions()), host=host, clean=True)
    assert host.tables["nft"].dump() == FakeTable().dump()
    assert plan_clean(host.tables["nft"].dump()) == []


def test_dry_run_prints_commands_and_changes_nothing() -> None:
    host = FakeHost()
    out, err = io.StringIO(), io.StringIO()
    code = run(ProxyInitCommandOptions(dry_run=True), GlobalOptions(), Output(out, err), host)
    assert code == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "# iptables mode: nft (the host's iptables is nf_tables)"
    assert lines[1] == "iptables-nft -w 5 -t nat -N PROXY_INIT_REDIRECT"
    assert lines[-1] == (
        "iptables-nft -w 5 -t nat -A OUTPUT -m comment --comment "
        "proxy-init/install-proxy-init-output -j PROXY_INIT_OUTPUT"
    )
    assert len(lines) == 10
    assert host.tables["nft"].dump() == FakeTable().dump()
    assert not any(c[3:5] == ["-t", "nat"] and c[5] != "-S" for c in host.calls if len(c) > 5)


def test_dry_run_works_without_root_and_plans_a_fresh_pod() -> None:
    host = FakeHost(privileged=False)
    out = io.StringIO()
    run(ProxyInitCommandOptions(dry_run=True), GlobalOptions(), Output(out, io.StringIO()), host)
    assert "-N PROXY_INIT_OUTPUT" in out.getvalue()
    assert all(c[1:] == ["--version"] for c in host.calls)


def test_not_root_is_one_clear_error() -> None:
    with pytest.raises(RuntimeEnvError) as info:
        _install(FakeHost(privileged=False))
    assert "must run as root" in info.value.message
    assert info.value.hint and "NET_ADMIN" in info.value.hint


def test_cli_reports_installed_then_already_in_place() -> None:
    host = FakeHost()
    outputs = []
    for _ in range(2):
        out = io.StringIO()
        run(ProxyInitCommandOptions(), GlobalOptions(), Output(out, io.StringIO()), host)
        outputs.append(out.getvalue())
    assert outputs[0] == (
        "proxy-init: installed the proxy's nat rules with iptables-nft "
        "(PROXY_INIT_REDIRECT: 2 rules, PROXY_INIT_OUTPUT: 3 rules)\n"
    )
    assert outputs[1] == "proxy-init: the proxy's nat rules are already in place (iptables-nft)\n"


def test_explicit_mode_uses_that_backend() -> None:
    host = FakeHost()
    _install(host, mode="legacy")
    assert host.tables["nft"].dump() == FakeTable().dump()
    assert "-N PROXY_INIT_OUTPUT" in host.tables["legacy"].dump()
    # later runs without --iptables-mode find our chains where they are
    assert _install(host) == []


def test_missing_binary_for_explicit_mode_is_one_clear_error() -> None:
    host = FakeHost(binaries=("iptables", "iptables-nft"))
    with pytest.raises(RuntimeEnvError) as info:
        _install(host, mode="legacy")
    assert info.value.message == "--iptables-mode legacy: iptables-legacy is not on PATH"
    assert info.value.hint and "--iptables-mode nft" in info.value.hint


def test_plain_iptables_serves_its_own_mode() -> None:
    host = FakeHost(binaries=("iptables",), default="legacy")
    commands = _install(host, mode="legacy")
    assert commands[0].startswith("iptables -w 5 -t nat -N ")
    with pytest.raises(RuntimeEnvError, match="iptables-nft is not on PATH"):
        _install(host, mode="nft")


def test_without_plain_iptables_it_falls_back_with_a_warning() -> None:
    host = FakeHost(binaries=("iptables-legacy",))
    warnings: list[str] = []
    outcome = execute(build_ruleset(ProxyInitOptions()), host=host, warn=warnings.append)
    assert outcome.backend.binary == "iptables-legacy"
    assert warnings == ["proxy-init: iptables-nft is not on PATH, falling back to iptables-legacy"]


def test_no_iptables_at_all() -> None:
    with pytest.raises(RuntimeEnvError, match="no iptables on PATH") as info:
        _install(FakeHost(binaries=()))
    assert info.value.hint and "install the iptables package" in info.value.hint


def test_failing_command_names_itself_and_iptables_message() -> None:
    host = FakeHost()
    host.tables["nft"].chains.append("PROXY_INIT_OUTPUT")  # -S shows it, so the plan says -F
    host.tables["nft"].rules.append("-A OUTPUT -j PROXY_INIT_OUTPUT")

    def broken_run(argv: Sequence[str]) -> Completed:
        if "-F" in argv:
            return Completed(1, "", "iptables: No chain/target/match by that name.\n")
        return FakeHost.run(host, argv)

    host.run = broken_run  # type: ignore[method-assign]
    with pytest.raises(RuntimeEnvError) as info:
        _install(host)
    assert info.value.message == (
        "`iptables-nft -w 5 -t nat -F PROXY_INIT_OUTPUT` failed: "
        "iptables: No chain/target/match by that name."
    )


@pytest.mark.parametrize(
    ("tables", "version", "expected"),
    [
        ({"nft": [], "legacy": []}, VERSIONS["nft"], "nft"),
        ({"nft": [], "legacy": []}, VERSIONS["legacy"], "legacy"),
        ({"nft": [], "legacy": ["-A KUBE-SERVICES -j X"]}, VERSIONS["nft"], "legacy"),
        ({"nft": ["-N PROXY_INIT_OUTPUT"], "legacy": ["-A X -j Y"]}, VERSIONS["legacy"], "nft"),
        ({"nft": None, "legacy": None}, None, "nft"),
    ],
)
def test_choose_mode_follows_what_the_host_uses(
    tables: dict[IptablesMode, list[str] | None], version: str | None, expected: str
) -> None:
    mode, reason = choose_mode(None, version, tables)
    assert mode == expected
    assert reason


def test_clean_leaves_other_chains_and_rules_alone() -> None:
    others = [
        "-N PROXY_INIT_SOMETHING_ELSE",
        "-N KUBE-SERVICES",
        "-A PREROUTING -j KUBE-SERVICES",
        "-A OUTPUT -j PROXY_INIT_SOMETHING_ELSE",
    ]
    host = FakeHost()
    table = host.tables["nft"]
    table.chains += ["PROXY_INIT_SOMETHING_ELSE", "KUBE-SERVICES"]
    table.rules += others[2:]
    _install(host)
    execute(build_ruleset(ProxyInitOptions()), host=host, clean=True)
    assert [line for line in table.dump() if not line.startswith("-P ")] == others
