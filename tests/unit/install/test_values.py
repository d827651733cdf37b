"""Values: defaults, overlays, and one clear error per mistake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lacewing.errors import ConfigError
from lacewing.install.values import (
    Values,
    build_values,
    parse_duration,
    values_from_dict,
    values_to_dict,
)


def test_defaults_are_the_documented_ones() -> None:
    v = Values()
    assert v.namespace == "lacewing"
    assert v.identity.trust_domain == "cluster.local"
    assert v.identity.issuance_lifetime == "24h"
    assert v.identity.clock_skew_allowance == "20s"
    assert v.identity.external_issuer is False
    assert v.proxy.uid == 2102
    assert (v.proxy.ports.inbound, v.proxy.ports.admin) == (4143, 4191)
    assert v.replicas == 1


def test_dict_round_trip_uses_camel_case_keys() -> None:
    data = values_to_dict(Values())
    assert data["proxy"]["resources"]["cpuRequest"] == "100m"
    assert data["identity"]["issuanceLifetime"] == "24h"
    assert values_from_dict(data) == Values()


def test_set_coerces_to_the_field_type() -> None:
    v = build_values(sets=["ha=true", "controllerReplicas=2", "image.tag=1.10", "proxy.uid=3000"])
    assert v.ha is True and v.replicas == 3
    assert v.image.tag == "1.10"
    assert v.proxy.uid == 3000


def test_later_overlays_win(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    first.write_text("proxy:\n  logLevel: debug\nha: true\n")
    second = tmp_path / "b.yaml"
    second.write_text("proxy:\n  logLevel: warn\n")
    v = build_values(files=[str(first), str(second)], sets=["proxy.opaquePorts=25"])
    assert v.proxy.log_level == "warn"
    assert v.ha is True  # untouched by the second file
    assert v.proxy.opaque_ports == "25"
    assert build_values(files=[str(first)], overrides={"ha": False}).ha is False


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["proxy.nope=1"], "unknown value proxy.nope"),
        (["ha=maybe"], "value ha must be true or false"),
        (["proxy.uid=abc"], "value proxy.uid must be an integer"),
        (["proxy=3"], "value proxy must be a mapping"),
        (["noequals"], "is not key=value"),
        (["proxy.resources.memoryLimit=lots"], "is not a resource quantity"),
        (["identity.issuanceLifetime=forever"], "identity.issuanceLifetime='forever' is invalid"),
        (["namespace=Bad_Name"], "value namespace='Bad_Name' is invalid"),
        (["proxy.logLevel=loud"], "proxy.logLevel='loud' is invalid"),
    ],
)
def test_bad_set_is_one_clear_error(sets: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_values(sets=sets)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_key_hint_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        build_values(sets=["proxy.resources.cpu=1"])
    assert caught.value.hint is not None
    assert "cpuRequest" in caught.value.hint


def test_values_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("proxy: [\n")
    with pytest.raises(ConfigError, match=r"values file .*bad.yaml is not valid YAML at line"):
        build_values(files=[str(bad)])
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        build_values(files=[str(listy)])
    with pytest.raises(ConfigError, match="cannot read values file"):
        build_values(files=[str(tmp_path / "absent.yaml")])
    floaty = tmp_path / "float.yaml"
    floaty.write_text("image:\n  tag: 1.10\n")
    with pytest.raises(ConfigError, match="must be a string") as caught:
        build_values(files=[str(floaty)])
    assert caught.value.hint and "quote" in caught.value.hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("20s", timedelta(seconds=20)),
        ("1h30m", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "5ms", "1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)
