"""The rule set is a pure function of the options; these pin what lands in the nat table."""

from __future__ import annotations

import pytest

from lacewing.errors import UsageError
from lacewing.proxy.init.rules import (
    INBOUND_CHAIN,
    OUTBOUND_CHAIN,
    PortRange,
    ProxyInitOptions,
    build_ruleset,
    parse_port_list,
    parse_subnet_list,
)

DEFAULT_LINES = [
    '-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -m comment --comment "proxy-init/ignore-inbound-ports" -j RETURN',  # noqa: E501
    '-A PROXY_INIT_REDIRECT -p tcp -m comment --comment "proxy-init/redirect-all-incoming-to-proxy-port" -j REDIRECT --to-ports 4143',  # noqa: E501
    '-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -m comment --comment "proxy-init/ignore-proxy-user-id" -j RETURN',  # noqa: E501
    '-A PROXY_INIT_OUTPUT -o lo -m comment --comment "proxy-init/ignore-loopback" -j RETURN',
    '-A PROXY_INIT_OUTPUT -p tcp -m comment --comment "proxy-init/redirect-all-outgoing-to-proxy-port" -j REDIRECT --to-ports 4140',  # noqa: E501
]


def test_default_rules_match_linkerd_layout() -> None:
    ruleset = build_ruleset(ProxyInitOptions())
    assert [rule.render() for rule in ruleset.rules] == DEFAULT_LINES
    assert [jump.render() for jump in ruleset.jumps] == [
        '-A PREROUTING -m comment --comment "proxy-init/install-proxy-init-prerouting" -j PROXY_INIT_REDIRECT',  # noqa: E501
        '-A OUTPUT -m comment --comment "proxy-init/install-proxy-init-output" -j PROXY_INIT_OUTPUT',  # noqa: E501
    ]


def test_every_rule_is_named_by_a_comment() -> None:
    options = ProxyInitOptions(
        inbound_ports_to_ignore=(PortRange(22, 22),),
        outbound_ports_to_ignore=(PortRange(25, 25),),
        subnets_to_ignore=("10.0.0.0/8",),
    )
    ruleset = build_ruleset(options)
    names = [rule.name for rule in (*ruleset.rules, *ruleset.jumps)]
    assert names == [
        "ignore-inbound-ports",
        "ignore-inbound-subnets",
        "redirect-all-incoming-to-proxy-port",
        "ignore-proxy-user-id",
        "ignore-loopback",
        "ignore-outbound-ports",
        "ignore-outbound-subnets",
        "redirect-all-outgoing-to-proxy-port",
        "install-proxy-init-prerouting",
        "install-proxy-init-output",
    ]
    for rule in (*ruleset.rules, *ruleset.jumps):
        spec = rule.spec()
        at = spec.index("--comment")
        assert spec[at - 2 : at] == ("-m", "comment")
        assert spec[at + 1] == f"proxy-init/{rule.name}"


def test_flags_change_ports_uid_and_ignores() -> None:
    options = ProxyInitOptions(
        incoming_proxy_port=5143,
        outgoing_proxy_port=5140,
        proxy_uid=999,
        inbound_ports_to_ignore=parse_port_list("22, 4191,8000-8100", "--x"),
        outbound_ports_to_ignore=parse_port_list("25,443", "--x"),
        subnets_to_ignore=parse_subnet_list("10.1.2.3/16,192.168.1.7"),
    )
    lines = {rule.render() for rule in build_ruleset(options).rules}
    assert (
        '-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191,22,8000:8100 -m comment --comment "proxy-init/ignore-inbound-ports" -j RETURN'  # noqa: E501
        in lines
    )
    assert (
        '-A PROXY_INIT_REDIRECT -s 10.1.0.0/16 -m comment --comment "proxy-init/ignore-inbound-subnets" -j RETURN'  # noqa: E501
        in lines
    )
    assert (
        '-A PROXY_INIT_OUTPUT -d 192.168.1.7/32 -m comment --comment "proxy-init/ignore-outbound-subnets" -j RETURN'  # noqa: E501
        in lines
    )
    assert (
        '-A PROXY_INIT_OUTPUT -p tcp -m multiport --dports 25,443 -m comment --comment "proxy-init/ignore-outbound-ports" -j RETURN'  # noqa: E501
        in lines
    )
    text = "\n".join(sorted(lines))
    assert "--to-ports 5143" in text and "--to-ports 5140" in text
    assert "--uid-owner 999 " in text
    assert "4143" not in text and "4140" not in text and "2102" not in text


def test_returns_come_before_the_redirect_in_each_chain() -> None:
    options = ProxyInitOptions(subnets_to_ignore=("10.0.0.0/8",))
    ruleset = build_ruleset(options)
    for chain in (INBOUND_CHAIN, OUTBOUND_CHAIN):
        targets = [rule.target for rule in ruleset.chains[chain]]
        assert targets[-1] == "REDIRECT"
        assert set(targets[:-1]) == {"RETURN"}


def test_long_port_lists_are_split_at_the_multiport_limit() -> None:
    ports = parse_port_list(",".join(str(p) for p in range(9000, 9020)) + ",7000-7100", "--x")
    ruleset = build_ruleset(ProxyInitOptions(inbound_ports_to_ignore=ports))
    chunks = [r for r in ruleset.chains[INBOUND_CHAIN] if r.name == "ignore-inbound-ports"]
    assert len(chunks) == 2
    listed: list[str] = []
    for rule in chunks:
        dports = rule.spec()[rule.spec().index("--dports") + 1].split(",")
        assert sum(2 if ":" in p else 1 for p in dports) <= 15
        listed += dports
    assert listed == ["4190", "4191", *(str(p) for p in range(9000, 9020)), "7000:7100"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "0 is not a TCP port"),
        ("65536", "65536 is not a TCP port"),
        ("http", "'http' is not a port or a port range"),
        ("9000-80", "ends before it starts"),
        ("1-2-3", "is not a port or a port range"),
    ],
)
def test_bad_port_lists_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_port_list(text, "--inbound-ports-to-ignore")
    assert message in info.value.message
    assert info.value.message.startswith("--inbound-ports-to-ignore")
    assert info.value.hint


@pytest.mark.parametrize(
    ("text", "message"), [("10.0.0.0/33", "not a subnet"), ("fd00::/8", "IPv6")]
)
def test_bad_subnets_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_subnet_list(text)
    assert message in info.value.message
    assert info.value.hint


def test_bad_proxy_ports_and_uid_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="--incoming-proxy-port: 0"):
        ProxyInitOptions(incoming_proxy_port=0)
    with pytest.raises(UsageError, match="--outgoing-proxy-port: 70000"):
        ProxyInitOptions(outgoing_proxy_port=70000)
    with pytest.raises(UsageError, match="--proxy-uid -1"):
        ProxyInitOptions(proxy_uid=-1)


def test_port_list_parsing_accepts_spaces_colons_and_empty() -> None:
    assert parse_port_list("", "--x") == ()
    assert parse_port_list(" 80 , 8000:8002 ,", "--x") == (PortRange(80, 80), PortRange(8000, 8002))
