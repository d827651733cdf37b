"""`lacewing demo --duration 20s` (root): the printed table agrees with vote-bot's own counts."""

from __future__ import annotations

import re

import pytest
from tests.integration.local.conftest import lacewing, leftovers, run_name

pytestmark = pytest.mark.root

NAME = run_name("tdemo")


def test_demo_table_agrees_with_the_traffic_generator() -> None:
    try:
        result = lacewing("demo", "--duration", "20s", "--name", NAME, timeout=110)
    finally:
        lacewing("local", "down", "--name", NAME)
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout  # every assertion shows it, so a failure explains itself
    lines = out.splitlines()
    assert lines[0].startswith("lacewing demo: golden metrics over the last 2"), out
    header = lines[1].split()
    assert header == [
        "NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99",
        "TCP_CONN", "TLS",
    ], out  # fmt: skip
    rows = {line.split()[0]: dict(zip(header, line.split(), strict=True)) for line in lines[2:6]}
    assert set(rows) == {"web", "emoji", "voting", "vote-bot"}, out
    assert all(row["MESHED"] in ("1/1", "2/2") for row in rows.values()), out
    match = re.fullmatch(
        r"vote-bot counted (\d+) requests to web, (\d+) succeeded \((\S+)%\); web's proxy "
        r"counted (\d+) responses, (\d+) successful: they agree",
        lines[6],
    )
    assert match, out
    sent, ok, share, seen, seen_ok = match.groups()
    assert (sent, ok) == (seen, seen_ok), out
    assert int(sent) >= 40, out
    assert rows["web"]["SUCCESS"] == f"{share}%", out
    # vote-bot aims at 20 requests/s (fewer on a busy machine): half lists, half votes;
    # voting fails every 8th vote (so 87.5%, give or take one vote at the window's edges),
    # web passes that failure on, and every request was mutual TLS between the proxies
    assert 1 <= float(rows["web"]["RPS"].removesuffix("rps")) <= 21, out
    assert rows["emoji"]["SUCCESS"] == "100.00%", out
    votes = int(sent) // 2
    voting = float(rows["voting"]["SUCCESS"].removesuffix("%"))
    assert abs(voting - 87.5) <= 100 / votes + 1, out
    assert rows["web"]["TLS"] == rows["emoji"]["TLS"] == "100.00%", out
    assert "stopped and removed" in result.stderr
    assert leftovers(NAME) == []


def test_demo_canary_shows_the_canary_taking_its_share_of_emoji() -> None:
    name = run_name("tdcan")
    try:
        result = lacewing("demo", "--canary", "--duration", "20s", "--name", name, timeout=120)
    finally:
        lacewing("local", "down", "--name", name)
    out = result.stdout
    assert result.returncode == 0, result.stderr + out
    assert "emoji-canary with 10% of emoji's calls" in result.stderr
    lines = out.splitlines()
    header = lines[1].split()
    rows = {line.split()[0]: dict(zip(header, line.split(), strict=True))
            for line in lines[2:] if line.split() and line.split()[0] in (
                "emoji", "emoji-canary", "web")}  # fmt: skip
    assert set(rows) == {"web", "emoji", "emoji-canary"}, out
    rps = {k: float(row["RPS"].removesuffix("rps")) for k, row in rows.items()}
    share = rps["emoji-canary"] / (rps["emoji"] + rps["emoji-canary"])
    print(f"demo --canary: {rps}, canary share {share:.3f}")
    assert 0.03 <= share <= 0.2, out  # 10% of a few hundred calls
    assert rows["emoji-canary"]["MESHED"] == "1/1" and rows["emoji-canary"]["TLS"] == "100.00%"
    assert leftovers(name) == []


def test_demo_with_policy_shows_a_denied_call_and_still_agrees() -> None:
    """`lacewing demo --policy`: web's votes still pass (the table agrees with vote-bot), and
    the bot, calling voting itself, gets what the voting Server's routes say."""
    name = run_name("tdemop")
    try:
        result = lacewing("demo", "--policy", "--duration", "5s", "--name", name, timeout=110)
    finally:
        lacewing("local", "down", "--name", name)
    out = result.stdout
    assert result.returncode == 0, result.stderr + out
    lines = out.splitlines()
    assert lines[:4] == [
        "policy: from vote-bot-0 (identity bot.emojivoto...) to voting:",
        "  GET /leaderboard: 200 (route voting-leaderboard: any meshed client)",
        "  POST /vote?choice=:ghost:: 403 (route voting-vote: web's identity only; the app "
        "never sees it)",
        "  GET /admin: 404 (no route of voting-http matches; the proxy says so)",
    ], out
    assert re.search(r"web's proxy counted \d+ responses, \d+ successful: they agree", out), out
    rows = {line.split()[0]: line.split() for line in lines if line.startswith("voting ")}
    assert float(rows["voting"][2].removesuffix("%")) >= 80, out  # web's votes still pass
    assert leftovers(name) == []
