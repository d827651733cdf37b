"""`lacewing demo --duration 25s` (root): the printed table agrees with vote-bot's own counts,
and the dashboard URL it prints answers while it runs, with the demo's workloads in its JSON
(Debian `prometheus` is needed for the dashboard: `apt-get install prometheus`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from tests.integration.local.conftest import REPO, lacewing, leftovers, run_name

pytestmark = pytest.mark.root

NAME = run_name("tdemo")
URL_LINE = re.compile(r"lacewing dashboard: (http://127\.0\.0\.1:\d+/)$")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _watch_dashboard(err_lines: list[str], seen: dict[str, Any], stop: threading.Event) -> None:
    """Once the URL is printed: fetch the page, then poll the workloads' JSON until every demo
    workload has requests (Prometheus needs a few scrapes) or the demo ends."""
    while not stop.is_set() and not any(URL_LINE.match(line) for line in err_lines):
        time.sleep(0.2)
    match = next((m for m in map(URL_LINE.match, err_lines) if m), None)
    if match is None:
        return
    url = seen["url"] = match.group(1)
    seen["page"] = _get(url)
    while not stop.is_set():
        status, body = _get(url + "api/workloads?ns=emojivoto&window=30s")
        seen["workloads"] = (status, body)
        if status == 200:
            rows = {r["name"]: r for r in json.loads(body)["rows"]}
            if {"web", "emoji", "voting", "vote-bot"} <= set(rows) and all(
                (r.get("requests") or 0) > 0 for n, r in rows.items() if n != "vote-bot"
            ):
                return
        time.sleep(1)


def test_demo_table_agrees_with_the_traffic_generator() -> None:
    if shutil.which("prometheus") is None and not os.environ.get("LACEWING_PROMETHEUS_BIN"):
        pytest.skip("needs Prometheus for the dashboard: apt-get install prometheus")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LACEWING_LOCAL_CLUSTER", None)
    argv = [sys.executable, "-m", "lacewing.cli.main", "demo", "--duration", "25s",
            "--name", NAME, "--dashboard-port", "0"]  # fmt: skip
    err_lines: list[str] = []
    dash: dict[str, Any] = {}
    stop = threading.Event()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)  # fmt: skip
        assert proc.stderr is not None and proc.stdout is not None

        def read_err() -> None:
            for line in proc.stderr:  # type: ignore[union-attr]
                err_lines.append(line.rstrip("\n"))

        reader = threading.Thread(target=read_err, daemon=True)
        reader.start()
        watcher = threading.Thread(target=_watch_dashboard, args=(err_lines, dash, stop))
        watcher.start()
        try:
            stdout = proc.stdout.read()
            returncode = proc.wait(timeout=120)
        finally:
            stop.set()
            watcher.join(timeout=30)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(timeout=10)
    finally:
        lacewing("local", "down", "--name", NAME)
    stderr = "\n".join(err_lines)
    assert returncode == 0, stderr + stdout
    out = stdout  # every assertion shows it, so a failure explains itself
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
    assert "stopped and removed" in stderr
    assert leftovers(NAME) == []
    # the dashboard: printed once traffic flowed, answered while the demo ran, gone after
    assert "url" in dash, stderr
    status, page = dash["page"]
    assert status == 200 and b"<html" in page.lower(), page[:200]
    status, body = dash["workloads"]
    assert status == 200, body
    rows = {r["name"]: r for r in json.loads(body)["rows"]}
    assert {"web", "emoji", "voting", "vote-bot"} <= set(rows), body
    assert all(rows[n]["requests"] > 0 for n in ("web", "emoji", "voting")), body
    assert rows["web"]["meshed"] == "1/1" and rows["emoji"]["meshed"] == "2/2", body
    with pytest.raises(OSError):
        urllib.request.urlopen(dash["url"], timeout=5)


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
