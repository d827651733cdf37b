from __future__ import annotations

import pytest

from lacewing.cli.main import main
from lacewing.errors import ConfigError
from lacewing.proxy.config import SETTINGS, Addr, load, parse_addr, settings_table


def test_defaults_follow_linkerd_ports() -> None:
    cfg = load({})
    assert cfg.inbound_listen_addr == Addr("0.0.0.0", 4143)
    assert cfg.outbound_listen_addr == Addr("127.0.0.1", 4140)
    assert cfg.admin_listen_addr == Addr("0.0.0.0", 4191)
    assert cfg.detect_timeout == 10.0
    assert cfg.shutdown_grace_period == 30.0
    assert cfg.opaque_ports == frozenset()
    assert cfg.inbound_forward_host == "127.0.0.1"
    assert cfg.outbound_fixed_dst is None and cfg.run_as_uid is None


def test_values_are_parsed() -> None:
    cfg = load(
        {
            "LACEWING_PROXY_OPAQUE_PORTS": "25, 3306,8000-8002",
            "LACEWING_PROXY_DETECT_TIMEOUT": "500ms",
            "LACEWING_PROXY_SHUTDOWN_GRACE_PERIOD": "2m",
            "LACEWING_PROXY_OUTBOUND_FIXED_DST": "[::1]:8080",
            "LACEWING_PROXY_RUN_AS_UID": "2102",
            "LACEWING_PROXY_LOG_LEVEL": "WARN",
        }
    )
    assert cfg.opaque_ports == {25, 3306, 8000, 8001, 8002}
    assert cfg.detect_timeout == 0.5
    assert cfg.shutdown_grace_period == 120.0
    assert cfg.outbound_fixed_dst == Addr("::1", 8080)
    assert str(cfg.outbound_fixed_dst) == "[::1]:8080"
    assert cfg.run_as_uid == 2102
    assert cfg.log_level == "warning"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("LACEWING_PROXY_INBOUND_LISTEN_ADDR", "4143", "is not host:port"),
        ("LACEWING_PROXY_OPAQUE_PORTS", "25,99999", "is not a port"),
        ("LACEWING_PROXY_OPAQUE_PORTS", "30-20", "reversed"),
        ("LACEWING_PROXY_DETECT_TIMEOUT", "soon", "is not a duration"),
        ("LACEWING_PROXY_DETECT_TIMEOUT", "0s", "more than zero"),
        ("LACEWING_PROXY_MAX_CONNECTIONS", "-1", "positive whole number"),
        ("LACEWING_PROXY_LOG_LEVEL", "loud", "is not one of"),
        ("LACEWING_PROXY_RUN_AS_UID", "proxy", "numeric id"),
        ("LACEWING_PROXY_INBOUND_FORWARD_HOST", "a b", "IP address or host name"),
        ("LACEWING_PROXY_DETECT_TIMOUT", "1s", "unknown setting"),
    ],
)
def test_invalid_value_names_the_variable(variable: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load({variable: value})
    assert info.value.message.startswith(f"{variable}: ")
    assert problem in info.value.message
    assert info.value.exit_code == 2


def test_parse_addr_rejects_missing_port() -> None:
    with pytest.raises(ValueError, match="not host:port"):
        parse_addr("localhost")


def test_docs_table_matches_settings() -> None:
    with open("docs/proxy-config.md") as f:
        doc = f.read()
    assert settings_table() in doc, "regenerate the table in docs/proxy-config.md"
    assert len(SETTINGS) == settings_table().count("| `LACEWING_PROXY_")


def test_cli_prints_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LACEWING_PROXY_DETECT_TIMEOUT", "forever")
    with pytest.raises(SystemExit) as info:
        main(["proxy"])
    assert info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert (
        err[0]
        == "Error: LACEWING_PROXY_DETECT_TIMEOUT: 'forever' is not a duration like 10s, 500ms or 2m"
    )
    assert len(err) == 2 and "Traceback" not in "".join(err)
