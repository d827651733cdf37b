"""Renderers: human (streamed), short, JSON, and the terminal spinner."""

from __future__ import annotations

import io
import json

from lacewing.healthcheck.model import Category, Check, Outcome, Status
from lacewing.healthcheck.render import SYMBOLS, HumanRenderer, to_json
from lacewing.healthcheck.runner import run_checks

CROSS = SYMBOLS[Status.ERROR]
CATS: list[Category[None]] = [
    Category(
        "kubernetes-api",
        (
            Check("can initialize the client", "h", lambda c: Outcome.ok()),
            Check("can query the Kubernetes API", "h", lambda c: Outcome.ok()),
        ),
    ),
    Category(
        "lacewing-version",
        (
            Check(
                "can determine the latest version",
                "set LACEWING_SKIP_VERSION_CHECK=1 to skip",
                lambda c: Outcome.fail("cannot reach http://x: refused"),
                warning=True,
            ),
        ),
    ),
    Category(
        "lacewing-existence",
        (
            Check(
                "control plane pods are ready",
                "kubectl -n lacewing get pods",
                lambda c: Outcome.fail("no ready pod for identity\nno ready pod for policy"),
            ),
        ),
    ),
]


def render(cats: list[Category[None]], *, short: bool = False) -> str:
    buf = io.StringIO()
    renderer = HumanRenderer(buf, short=short)
    report = run_checks(cats, None, observer=renderer)
    renderer.finish(report)
    return buf.getvalue()


def test_human_output_has_linkerds_shape() -> None:
    assert render(CATS) == (
        "kubernetes-api\n"
        "--------------\n"
        "√ can initialize the client\n"
        "√ can query the Kubernetes API\n"
        "\n"
        "lacewing-version\n"
        "----------------\n"
        "‼ can determine the latest version\n"
        "    cannot reach http://x: refused\n"
        "    set LACEWING_SKIP_VERSION_CHECK=1 to skip\n"
        "\n"
        "lacewing-existence\n"
        "------------------\n"
        f"{CROSS} control plane pods are ready\n"
        "    no ready pod for identity\n"
        "    no ready pod for policy\n"
        "    kubectl -n lacewing get pods\n"
        "\n"
        f"Status check results are {CROSS}\n"
    )


def test_all_passing_ends_with_a_tick() -> None:
    assert render(CATS[:1]).endswith("\n\nStatus check results are √\n")


def test_short_output_shows_only_warnings_and_errors() -> None:
    out = render(CATS, short=True)
    assert "kubernetes-api" not in out and "√ can" not in out
    assert out.startswith("lacewing-version\n----------------\n‼ can determine")
    assert out.endswith(f"    kubectl -n lacewing get pods\n\nStatus check results are {CROSS}\n")
    assert render(CATS[:1], short=True) == "Status check results are √\n"


def test_json_has_linkerds_shape() -> None:
    document = json.loads(to_json(run_checks(CATS, None)))
    assert document["success"] is False
    assert [c["categoryName"] for c in document["categories"]] == [
        "kubernetes-api",
        "lacewing-version",
        "lacewing-existence",
    ]
    assert document["categories"][0]["checks"][0] == {
        "description": "can initialize the client",
        "result": "success",
    }
    assert document["categories"][1]["checks"][0] == {
        "description": "can determine the latest version",
        "hint": "set LACEWING_SKIP_VERSION_CHECK=1 to skip",
        "error": "cannot reach http://x: refused",
        "result": "warning",
    }
    assert document["categories"][2]["checks"][0]["result"] == "error"


def test_spinner_is_rewritten_in_place_on_a_terminal_only() -> None:
    state = {"n": 0}

    def flaky(ctx: None) -> Outcome:
        state["n"] += 1
        return Outcome.ok() if state["n"] > 2 else Outcome.fail("identity not ready")

    cats = [Category("x", (Check("pods are ready", "h", flaky, retry_deadline=True),))]
    clock = iter(range(0, 1000)).__next__

    def run(terminal: bool) -> str:
        state["n"] = 0
        buf = io.StringIO()
        renderer = HumanRenderer(buf, terminal=terminal)
        report = run_checks(
            cats,
            None,
            wait=60,
            clock=lambda: float(clock()),
            sleep=lambda s: None,
            observer=renderer,
        )
        renderer.finish(report)
        return buf.getvalue()

    tty = run(terminal=True)
    assert tty.count("\r\x1b[K") == 3  # two spinner frames, then the line is erased
    assert "⠋ pods are ready -- identity not ready (waiting" in tty
    assert "⠙ pods are ready" in tty
    assert "\x1b[32;1m√\x1b[0m pods are ready" in tty
    plain = run(terminal=False)
    assert "\r" not in plain and "\x1b" not in plain
    assert "√ pods are ready\n" in plain
