"""Linkerd's own Grafana dashboards against a local cluster's Prometheus (root; Debian prometheus).

The PromQL of Linkerd's deployment and top-line dashboards (`linkerd_dashboards.yaml`, verbatim
from linkerd/linkerd2 `grafana/dashboards/`) is sent, with the Grafana variables substituted
as Grafana would, to the real Prometheus a local cluster runs while traffic flows. Every query
must answer a non-empty series: what a user importing those dashboards sees as a panel with
data rather than "No data".

Cluster `lwgraf` (namespace `graf`), chosen so that every panel of deploy/mid has something:

    cli  (meshed)    --mTLS-->   mid (meshed)  --mTLS-->       srv (meshed)
    raw  (unmeshed)  --plain-->  mid           --plaintext-->  ext (unmeshed)
    raw resets connections to mid (inbound errno), mid resets connections to srv (outbound)

Variables: `$namespace`/`$deployment` are the dashboard's drop-downs (graf, mid); a row with
`repeat: VAR` is asked once per value of VAR, the values coming from the variable's own
`label_values` query (`count by (label) (selector)` here). An "All" that is not repeated is
Grafana's regex of every value. `$__rate_interval` is 30s (Grafana's four scrape intervals,
with the data source's scrape interval set to the cluster's 1 s, is 4s; 30s spans the load's
pauses on a loaded machine). In a repeated row, each target must answer for at least one
value (deploy/srv's row has the mTLS series, deploy/ext's the plaintext one) and each panel for
every value. One target is empty by design, and asserted empty: plaintext from a meshed
deployment to mid (every meshed pair speaks mutual TLS).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.integration.local.conftest import REPO, lacewing, run_name

from lacewing.viz.prometheus import NodePrometheus

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        shutil.which("prometheus") is None, reason="install Debian package prometheus"
    ),
]

NAME = run_name("lwgraf")
NS = "graf"
DASHBOARDS = yaml.safe_load((Path(__file__).parent / "linkerd_dashboards.yaml").read_text())
APP = (
    f'command: [python, -m, tests.integration.viz.flaky, "8080"]\n    env: {{PYTHONPATH: "{REPO}"}}'
)
CLUSTER = f"""
workloads:
  - name: srv
    namespace: {NS}
    ports: [{{name: http, port: 8080}}]
    {APP}
  - name: mid
    namespace: {NS}
    ports: [{{name: http, port: 8080}}]
    {APP}
  - name: ext
    namespace: {NS}
    meshed: false
    ports: [{{name: http, port: 8080}}]
    {APP}
  - name: cli
    namespace: {NS}
    command: [sleep, infinity]
  - name: raw
    namespace: {NS}
    meshed: false
    command: [sleep, infinity]
"""
RATE_INTERVAL = "30s"
EMPTY_BY_DESIGN = {("deployment", "deploy/$inbound / REQUEST RATE", "B")}  # meshed -> mTLS
SCRIPTS = REPO / "tests/integration/viz"


def run_in(pod: str, script: str, *args: str, timeout: float = 120) -> dict[str, int]:
    result = lacewing("local", "exec", "--name", NAME, pod, "--", sys.executable,
                      str(SCRIPTS / script), *args, timeout=timeout)  # fmt: skip
    assert result.returncode == 0, result.stderr
    counts: dict[str, int] = json.loads(result.stdout)
    return counts


LOADS = [  # (pod, url): every edge of the picture above
    ("cli-0", "http://mid:8080"),
    ("raw-0", "http://mid:8080"),
    ("mid-0", "http://srv:8080"),
    ("mid-0", "http://ext:8080"),
]


def _loads(count: int, rate: float) -> list[threading.Thread]:
    def load(pod: str, url: str) -> None:  # (the cluster going down may end it first)
        lacewing("local", "exec", "--name", NAME, pod, "--", sys.executable,
                 str(SCRIPTS / "loadgen.py"), url, str(count), str(rate), "4",
                 timeout=count / rate + 60)  # fmt: skip

    threads = [threading.Thread(target=load, args=edge, daemon=True) for edge in LOADS]
    for t in threads:
        t.start()
    return threads


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodePrometheus]:
    lacewing("local", "down", "--name", NAME)
    spec = tmp_path_factory.mktemp("graf") / "cluster.yaml"
    spec.write_text(CLUSTER)
    threads: list[threading.Thread] = []
    try:
        up = lacewing("local", "up", "-f", str(spec), "--name", NAME)
        assert up.returncode == 0, up.stderr
        assert "prometheus: running (pid " in up.stderr, up.stderr
        for pod, url in LOADS:  # every series exists, and is scraped, before the load
            assert run_in(pod, "loadgen.py", url, "8", "8", "4")["ok"] == 6, (pod, url)
        assert run_in("raw-0", "resets.py", "mid", "8080", "5") == {"reset": 5}
        assert run_in("mid-0", "resets.py", "srv", "8080", "5") == {"reset": 5}
        threads = _loads(400, 10.0)  # 40 s of load on each edge, queried while it runs
        time.sleep(12)
        yield NodePrometheus(f"lwl-{NAME}-node")
    finally:
        lacewing("local", "down", "--name", NAME)
        for t in threads:
            t.join(timeout=5)


def _values(prom: NodePrometheus, query: str, variables: dict[str, str]) -> list[str]:
    """Grafana's `label_values(selector, label)`, asked as `count by (label) (selector)`."""
    m = re.fullmatch(r"label_values\((.*), (\w+)\)", query)
    assert m is not None, query
    selector, label = _substitute(m.group(1), variables), m.group(2)
    found = {labels.get(label, "") for labels, _ in prom.query(f"count by ({label}) ({selector})")}
    return sorted(v for v in found if v)


def _substitute(expr: str, variables: dict[str, str]) -> str:
    # longest names first: $deployment must not eat the $dep... of another name
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${name}", variables[name])
    assert "$" not in expr, expr
    return expr


def _variables(prom: NodePrometheus, board: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(the values substituted where a variable is one value, every value of each variable)."""
    defs = DASHBOARDS[board]["variables"]
    chosen: dict[str, str] = {"__rate_interval": RATE_INTERVAL}
    every: dict[str, list[str]] = {}
    if board == "deployment":  # the two drop-downs a user picks
        chosen.update(namespace=NS, deployment="mid")
        assert NS in _values(prom, defs["namespace"], chosen)
        assert "mid" in _values(prom, defs["deployment"], chosen)
        for name in ("inbound", "outbound"):
            every[name] = _values(prom, defs[name], chosen)
    else:  # top-line: hidden variables, "All"
        for name in ("namespace", "deployment"):
            every[name] = _values(prom, defs[name], chosen)
            chosen[name] = "(" + "|".join(re.escape(v) for v in every[name]) + ")"
    return chosen, every


def _ask(prom: NodePrometheus, board: str) -> dict[tuple[str, str, str], dict[str, int]]:
    """(board, panel, refId) -> {repeat value: series count} ("" when not repeated)."""
    chosen, every = _variables(prom, board)
    print(f"{board}: variables {chosen}, repeats {every}")
    answers: dict[tuple[str, str, str], dict[str, int]] = {}
    for panel in DASHBOARDS[board]["panels"]:
        var = panel.get("repeat")
        values = every[var] if var else [""]
        assert values, (board, panel["title"], "no value to repeat over")
        for ref, expr in panel["targets"].items():
            counts = answers.setdefault((board, panel["title"], ref), {})
            for value in values:
                variables = {**chosen, var: value} if var else chosen
                counts[value] = len(prom.query(_substitute(expr, variables)))
    return answers


def _missing(answers: dict[tuple[str, str, str], dict[str, int]]) -> list[str]:
    problems = []
    panels = itertools.groupby(sorted(answers), key=lambda k: k[:2])
    for (board, title), keys in panels:
        keys = list(keys)
        for key in keys:
            counts = answers[key]
            if key in EMPTY_BY_DESIGN:
                if any(counts.values()):
                    problems.append(f"{key}: expected empty (mTLS between meshed pods): {counts}")
            elif not any(counts.values()):
                problems.append(f"{key}: no series for any of {sorted(counts)}")
        for value in answers[keys[0]]:  # each repeated instance of the panel shows data
            if not any(answers[k][value] for k in keys):
                problems.append(f"{(board, title)} for {value!r}: no series")
    return problems


@pytest.mark.parametrize("board", ["deployment", "top-line"])
def test_every_query_of_linkerds_dashboard_has_data(prom: NodePrometheus, board: str) -> None:
    # asked again while the load runs if a panel is empty: on a loaded machine the scrape
    # around "now" may lag (Grafana refreshes the same way)
    for attempt in range(4):
        answers = _ask(prom, board)
        problems = _missing(answers)
        if not problems:
            break
        print(f"attempt {attempt}: {problems}")
        time.sleep(3)
    for key, counts in sorted(answers.items()):
        print(key, counts)
    assert problems == [], problems
    assert len(answers) == sum(len(p["targets"]) for p in DASHBOARDS[board]["panels"])


def test_tcp_resets_carry_their_errno(prom: NodePrometheus) -> None:
    seen = {
        (labels["direction"], labels["peer"]): value
        for labels, value in prom.query(
            f'sum by (direction, peer) (tcp_close_total{{namespace="{NS}", deployment="mid",'
            ' errno="ECONNRESET", classification="failure"})'
        )
    }
    # raw reset 5 connections to mid's inbound proxy, mid's app 5 to its own outbound proxy
    assert seen.get(("inbound", "src"), 0) >= 5, seen
    assert seen.get(("outbound", "src"), 0) >= 5, seen


def test_plaintext_and_the_control_plane_are_labelled_as_linkerd_labels_them(
    prom: NodePrometheus,
) -> None:
    reasons = {
        labels["direction"]: labels.get("no_tls_reason", "")
        for labels, _ in prom.query(
            f'count by (direction, no_tls_reason) (request_total{{namespace="{NS}",'
            ' deployment="mid", tls="no_identity"})'
        )
    }
    assert reasons == {"inbound": "no_tls_from_remote",
                       "outbound": "not_provided_by_service_discovery"}, reasons  # fmt: skip
    to_srv = prom.query(
        'count by (dst_serviceaccount) (request_total{deployment="mid", dst_deployment="srv"})'
    )
    assert [labels.get("dst_serviceaccount") for labels, _ in to_srv] == ["srv"], to_srv
    control = prom.query(
        f'sum by (classification) (control_response_total{{namespace="{NS}", deployment="mid"}})'
    )
    assert {labels["classification"] for labels, _ in control} >= {"success"}, control
    assert prom.query(f'control_request_total{{namespace="{NS}", pod="mid-0"}}'), "no control_*"
