"""docs/check.md documents every check that `check` and `check --pre` can print."""

from __future__ import annotations

from pathlib import Path

from lacewing.healthcheck.catalog import INSTALLED, PRE
from lacewing.healthcheck.checks.identity import WEBHOOKS

DOC = Path(__file__).resolve().parents[3] / "docs" / "check.md"


def _as_documented(description: str) -> str:
    """Per-webhook checks are documented once, with `<webhook>` for the webhook's title."""
    for hook in WEBHOOKS:
        if description.startswith(hook.title + " "):
            return "<webhook>" + description[len(hook.title) :]
    return description


def test_every_check_and_category_is_documented() -> None:
    text = DOC.read_text().replace("&lt;", "<").replace("&gt;", ">")
    missing = []
    for category in (*PRE, *INSTALLED):
        if f"### {category.name}" not in text:
            missing.append(category.name)
        missing += [
            check.description
            for check in category.checks
            if f"**{_as_documented(check.description)}**" not in text
        ]
    assert missing == []
