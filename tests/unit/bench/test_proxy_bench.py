"""Bad options stop the benchmark with one line before anything starts."""

from __future__ import annotations

import pytest
from bench.proxy_bench import _parse_args, _plan


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rows", "haproxy,nginx"], "unknown row(s) nginx"),
        (["--duration", "0"], "--duration must be between 1 and 120 seconds"),
        (["--rate", "1"], "--rate must be between 10 and 1000000"),
        (["--profile", "sometimes"], "invalid choice: 'sometimes'"),
        (["--soak-seconds", "0"], "--soak-seconds must be between 1 and 3600"),
    ],
)
def test_bad_options_are_one_line_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_quick_plan_is_short_and_default_plan_is_fuller() -> None:
    quick, full = _plan(_parse_args(["--quick"])), _plan(_parse_args([]))
    assert (quick.duration_s, quick.rounds, quick.profile_s) == (2.0, 2, 1.0)
    assert (full.duration_s, full.rounds, full.rate) == (10.0, 3, 5000)
    assert _plan(_parse_args(["--duration", "20"])).mem_run_s == 3.0
    assert (quick.soak_count, quick.soak_s) == (2_000, 30)
    assert (full.soak_count, full.soak_s) == (50_000, 480)
    assert _plan(_parse_args(["--soak-seconds", "900"])).soak_s == 900
    assert _plan(_parse_args(["--quick", "--soak-seconds", "900"])).soak_s == 900


def test_profile_defaults_to_auto_but_never_for_quick_runs() -> None:
    assert _parse_args([]).profile == "auto"
    assert _parse_args(["--quick"]).profile == "never"
    assert _parse_args(["--quick", "--profile", "always"]).profile == "always"
