"""`viz dashboard` in headless Chromium against a local cluster with load (root; Debian
packages prometheus and chromium).

One cluster (`lwdash`): `srv` x2 (500 on every 4th request) and `cli`, meshed, in `dtest`;
cli-0 sends a steady bounded load while Chromium loads the dashboard (`--dump-dom` after a
few polls, `--screenshot` of each page, kept under build/test-artifacts/dashboard/). The
figures the page shows must be the ones Prometheus gives for the same queries evaluated at the
instant the page's data was taken (`data-updated`), up to the page's rounding (and one scrape
that may land between the two asks), and the edges view must show cli -> srv over mutual TLS.
The live tap (Chromium driven over DevTools, `devtools.Browser`: the page keeps a stream
open) must show a request to a path made only during the test, with cli's and srv's
identities, within seconds of it; Stop must close the dashboard's taps.
"""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.local.conftest import REPO, lacewing, run_name
from tests.integration.viz.devtools import Browser

from lacewing.viz.prometheus import NodePrometheus
from lacewing.viz.promql import Resource, StatRequest
from lacewing.viz.statquery import stat_rows

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        shutil.which("prometheus") is None, reason="install Debian package prometheus"
    ),
    pytest.mark.skipif(CHROMIUM is None, reason="install Debian package chromium"),
]

NAME = run_name("lwdash")
NS = "dtest"
ARTIFACTS = REPO / "build" / "test-artifacts" / "dashboard"
CLUSTER = f"""
workloads:
  - name: srv
    namespace: {NS}
    replicas: 2
    ports: [{{name: http, port: 8080}}]
    command: [python, -m, tests.integration.viz.flaky, "8080"]
    env: {{PYTHONPATH: "{REPO}"}}
  - name: cli
    namespace: {NS}
    command: [sleep, infinity]
"""
RATE, SECONDS = 20.0, 30


def load_args(count: int, rate: float) -> tuple[str, ...]:
    return (
        "local", "exec", "--name", NAME, "cli-0", "--",
        sys.executable, str(REPO / "tests/integration/viz/loadgen.py"),
        "http://srv:8080", str(count), str(rate), "4",
    )  # fmt: skip


def load(count: int, rate: float) -> dict[str, int]:
    result = lacewing(*load_args(count, rate), timeout=count / rate + 30)
    assert result.returncode == 0, result.stderr
    counts: dict[str, int] = json.loads(result.stdout)
    return counts


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lacewing("local", "down", "--name", NAME)
    spec = tmp_path_factory.mktemp("dash") / "cluster.yaml"
    spec.write_text(CLUSTER)
    server: subprocess.Popen[str] | None = None
    loader: threading.Thread | None = None
    try:
        up = lacewing("local", "up", "-f", str(spec), "--name", NAME)
        assert up.returncode == 0, up.stderr
        assert "prometheus: running (pid " in up.stderr, up.stderr
        load(10, 20.0)  # the series exist and are scraped before the measured load
        # the steady load may still run when the cluster goes down at the end: its exit is moot
        loader = threading.Thread(target=lacewing, args=load_args(int(RATE * SECONDS), RATE))
        loader.start()
        server = subprocess.Popen(
            [sys.executable, "-m", "lacewing.cli.main", "viz", "dashboard",
             "--local", NAME, "--port", "0", "--no-browser"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )  # fmt: skip
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("lacewing dashboard: http://127.0.0.1:"), line
        time.sleep(8)  # some load in the window
        yield line.split(": ", 1)[1].strip()
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        lacewing("local", "down", "--name", NAME)
        if loader is not None:
            loader.join(timeout=SECONDS + 30)


def chromium(url: str, profile: Path, *args: str) -> str:
    assert CHROMIUM is not None
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args, url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class Cells(html.parser.HTMLParser):
    """Every `<tr data-name>` of the table with id `table`: {name: {data-field: text}}."""

    def __init__(self, table: str) -> None:
        super().__init__()
        self.table, self.inside = table, False
        self.rows: dict[str, dict[str, str]] = {}
        self.row: dict[str, str] | None = None
        self.field: str | None = None
        self.updated = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.updated = a.get("data-updated") or ""
        elif tag == "table":
            self.inside = a.get("id") == self.table
        elif tag == "tr" and self.inside and (a.get("data-name") or a.get("data-src")):
            key = a.get("data-name") or f"{a.get('data-src')}->{a.get('data-dst')}"
            self.row = self.rows.setdefault(key, {})
        elif tag == "td" and self.row is not None:
            self.field = a.get("data-field")
            if self.field:
                self.row[self.field] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self.field = None
        elif tag == "tr":
            self.row = None
        elif tag == "table":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.row is not None and self.field:
            self.row[self.field] += data


def parse(dom: str, table: str) -> Cells:
    cells = Cells(table)
    cells.feed(dom)
    return cells


def number(text: str) -> float:
    return float(text.rstrip("%").removesuffix("ms"))


def close(shown: str, truth: float | None, scale: float, rel: float, absolute: float) -> bool:
    """The page's figure against Prometheus': rounding plus what one more scrape can change."""
    assert truth is not None, shown
    return abs(number(shown) - truth * scale) <= rel * truth * scale + absolute


def test_workloads_page_shows_prometheus_figures(dashboard: str, tmp_path: Path) -> None:
    started = time.monotonic()
    dom = chromium(dashboard + f"?ns={NS}", tmp_path / "profile", "--dump-dom")
    cells = parse(dom, "workloads")
    assert cells.updated, dom[:2000]  # the page got data
    at = float(cells.updated)
    prom = NodePrometheus(f"lwl-{NAME}-node")
    request = StatRequest(Resource("deployment"), NS, "60000ms")
    truth = {r.name: r for r in stat_rows(prom, request, 60.0, None, at)}
    print(f"page (data at {at}): {cells.rows}")
    print(f"prometheus at {at}: {truth}")
    assert set(cells.rows) == {"srv", "cli"}, cells.rows
    srv, expect = cells.rows["srv"], truth["srv"]
    assert srv["meshed"] == "2/2" and cells.rows["cli"]["meshed"] == "1/1", cells.rows
    assert expect.requests > 50, expect  # the load is in the window
    assert close(srv["rps"], expect.rps, 1, 0.05, 0.05), (srv, expect)
    assert close(srv["success"], expect.success_rate, 100, 0.02, 0.005), (srv, expect)
    assert 70.0 <= number(srv["success"]) <= 80.0, srv  # every 4th request fails
    assert srv["tls"] == "100.00%", srv
    for q, value in (("p50", expect.p50), ("p95", expect.p95), ("p99", expect.p99)):
        assert close(srv[q], value, 1, 0.25, 0.5), (q, srv, expect)
    assert cells.rows["cli"]["success"] == "-"  # cli served nothing
    edges = parse(dom, "edges").rows
    assert set(edges) == {"cli->srv"}, edges
    identity = f"srv.{NS}.serviceaccount.identity.lacewing.cluster.local"
    assert edges["cli->srv"]["secured"] == "√" and edges["cli->srv"]["server_id"] == identity
    # the charts: Prometheus' recent history of srv, then one point per poll
    chart = re.search(r'data-name="srv"><div class="chart" data-key="rps" data-points="(\d+)"', dom)
    assert chart and int(chart.group(1)) >= 4, dom[dom.find('id="charts"') :][:600]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "workloads.png"
    chromium(
        dashboard + f"?ns={NS}", tmp_path / "profile", f"--screenshot={shot}",
        "--window-size=1280,1500", "--hide-scrollbars",
    )  # fmt: skip
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot} ({time.monotonic() - started:.1f}s for both loads)")


def test_namespaces_page(dashboard: str, tmp_path: Path) -> None:
    dom = chromium(dashboard, tmp_path / "profile", "--dump-dom")
    cells = parse(dom, "namespaces")
    assert cells.updated, dom[:2000]
    at = float(cells.updated)
    prom = NodePrometheus(f"lwl-{NAME}-node")
    truth = {
        r.name: r
        for r in stat_rows(
            prom, StatRequest(Resource("namespace"), None, "60000ms"), 60.0, None, at
        )
    }
    row = cells.rows[NS]
    print(f"page: {row}; prometheus: {truth[NS]}")
    assert close(row["rps"], truth[NS].rps, 1, 0.05, 0.05), (row, truth[NS])
    assert close(row["success"], truth[NS].success_rate, 100, 0.02, 0.005), (row, truth[NS])
    assert row["meshed"] == "3/3", row
    shot = ARTIFACTS / "namespaces.png"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    chromium(dashboard, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,700")
    assert shot.stat().st_size > 5_000
    print(f"screenshot: {shot}")


def test_history_is_what_prometheus_said_then(dashboard: str) -> None:
    import urllib.request

    with urllib.request.urlopen(dashboard + f"api/history?ns={NS}&span=1m", timeout=10) as r:
        data = json.loads(r.read())
    points = data["series"]["srv"]
    assert data["step"] == 1.0 and len(points) >= 5, data
    prom = NodePrometheus(f"lwl-{NAME}-node")
    request = StatRequest(Resource("deployment"), NS, "60000ms")
    # (points a few scrapes old: the newest ones can still gain a sample scraped before their
    # instant but stored after the dashboard asked, which a later instant query then counts)
    for point in (points[len(points) // 2], points[-5]):
        (then,) = [r for r in stat_rows(prom, request, 60.0, None, point["at"]) if r.name == "srv"]
        assert abs(point["rps"] - then.rps) <= 1e-6 * then.rps, (point, then)
        assert point["success"] == pytest.approx(then.success_rate), (point, then)
        assert point["latency_ms_p99"] == pytest.approx(then.p99), (point, then)


def test_every_asset_is_served_locally(dashboard: str) -> None:
    import urllib.request

    for path in ("", "app.js", "app.css"):
        with urllib.request.urlopen(dashboard + path, timeout=5) as r:
            body = r.read().decode()
        for marker in ("src=", "href=", "url(", "import ", "fetch("):
            for part in body.split(marker)[1:]:
                target = part.lstrip("\"'` ")
                assert not target.startswith(("http:", "https:", "//")), (path, part[:80])


def test_bad_input_is_one_line(dashboard: str) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(dashboard + "api/workloads?ns=x&window=soon", timeout=5)
    assert caught.value.code == 400
    body: Any = json.loads(caught.value.read())
    assert body == {"error": "invalid duration 'soon' for window"}, body


SUFFIX = "serviceaccount.identity.lacewing.cluster.local"
TAP_ROWS = """[...document.querySelectorAll('#tap tbody tr')].map(tr => ({
  path: tr.dataset.path, pod: tr.dataset.pod,
  cells: Object.fromEntries([...tr.cells].map(td => [td.dataset.field,
    td.dataset.identity !== undefined ? td.dataset.identity : td.textContent]))}))"""
TAP_STATE = "document.getElementById('tap-status')?.dataset.state"
TAP_TEXT = "document.getElementById('tap-status').textContent"


def wait(what: str, check: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds:g} s")


def test_live_tap_shows_a_request_made_now_with_its_identities(
    dashboard: str, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    marker = f"/tapped-{uuid.uuid4().hex[:8]}"
    browser = Browser(CHROMIUM, tmp_path / "profile")
    try:
        browser.navigate(dashboard + f"?ns={NS}&tap=srv&tap_path={marker}")
        wait("the page's tap to open", lambda: browser.evaluate(TAP_STATE) in ("running",
             "error"), 60)  # fmt: skip
        status = browser.evaluate(TAP_TEXT)
        assert status == "tapping 2 pod(s)", status  # both srv replicas, tapped from here
        assert browser.evaluate(TAP_ROWS) == []  # the load's / and /fail: not under the prefix
        script = f"import urllib.request; urllib.request.urlopen('http://srv:8080{marker}').read()"
        before = time.monotonic()
        made = lacewing("local", "exec", "--name", NAME, "cli-0", "--",
                        sys.executable, "-c", script)  # fmt: skip
        assert made.returncode == 0, made.stderr
        sent = time.monotonic()
        rows = wait("the request in the page's tap", lambda: browser.evaluate(TAP_ROWS), 15)
        seen = time.monotonic() - sent
        print(
            f"tap row {seen:.2f}s after the request returned ({sent - before:.2f}s for "
            f"`local exec` to make it): {rows}"
        )
        assert seen < 10, seen
        (row,) = rows  # one request, tapped once: by the inbound proxy of the srv pod it reached
        cells = row["cells"]
        assert row["path"] == marker and row["pod"].startswith("srv-"), row
        assert (cells["proxy"], cells["method"], cells["status"], cells["tls"]) == (
            "in", "GET", "200", "true"), row  # fmt: skip
        assert cells["authority"] == "srv:8080", row
        assert cells["src"] == f"cli.{NS}.{SUFFIX}" and cells["dst"] == f"srv.{NS}.{SUFFIX}", row
        assert cells["latency"].endswith("ms"), row
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "tap.png"
        browser.evaluate("document.getElementById('tap').scrollIntoView()")
        browser.screenshot(shot)
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
        # Stop: the page aborts its fetch, the dashboard closes the taps (its slots free up)
        browser.evaluate("document.getElementById('tap-toggle').click()")
        wait("the page to say stopped", lambda: browser.evaluate(TAP_STATE) == "stopped", 10)
    finally:
        browser.close()
    deadline = time.monotonic() + 20
    while not _free_slots(dashboard):  # (a try's own taps are closed within a heartbeat)
        assert time.monotonic() < deadline, "the page's tap was not closed after Stop"
        time.sleep(2.5)


def _free_slots(dashboard: str) -> bool:
    """Whether 4 taps (MAX_TAPS) can be opened at once: none is left over from the page."""
    from lacewing.viz.dashboard.tap import MAX_TAPS

    opened = []
    try:
        for _ in range(MAX_TAPS):
            query = f"api/tap?namespace={NS}&resource=deploy/srv&duration=5s&max_events=1"
            try:
                answer = urllib.request.urlopen(dashboard + query, timeout=20)
            except urllib.error.HTTPError as exc:
                assert exc.code == 429, exc.read()
                return False
            assert b"tapping" in answer.readline()
            opened.append(answer)
        return True
    finally:
        for answer in opened:
            answer.close()
