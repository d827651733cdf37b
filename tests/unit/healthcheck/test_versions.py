"""The latest-version lookup: parsing, comparing, and fetching from a loopback server."""

from __future__ import annotations

import pytest
from tests.unit.healthcheck.version_server import serve_version_document

from lacewing.errors import LacewingError
from lacewing.healthcheck.versions import (
    DEFAULT_VERSION_URL,
    fetch_latest,
    is_older,
    skip_requested,
    version_url,
)


@pytest.mark.parametrize(
    ("a", "b", "older"),
    [
        ("0.1.0", "0.2.0", True),
        ("0.2.0", "0.1.9", False),
        ("0.1.0", "0.1.0", False),
        ("0.10.0", "0.9.0", False),
        ("1.0.0-rc.1", "1.0.0", True),
        ("v1.2", "1.2.1", True),
        ("0.0.0+unknown", "0.1.0", True),
        ("garbage", "0.1.0", False),
    ],
)
def test_is_older(a: str, b: str, older: bool) -> None:
    assert is_older(a, b) is older


def test_url_and_skip_come_from_the_environment() -> None:
    assert version_url({}) == DEFAULT_VERSION_URL
    assert version_url({"LACEWING_VERSION_CHECK_URL": "http://127.0.0.1:1/v"}) == (
        "http://127.0.0.1:1/v"
    )
    assert skip_requested({"LACEWING_SKIP_VERSION_CHECK": "1"})
    assert not skip_requested({"LACEWING_SKIP_VERSION_CHECK": "0"})
    assert not skip_requested({})


def test_fetch_reads_the_stable_version_or_a_github_release() -> None:
    with serve_version_document(b'{"stable": "0.3.1"}') as url:
        assert fetch_latest(url) == "0.3.1"
    with serve_version_document(b'{"tag_name": "v0.4.0", "name": "lacewing 0.4"}') as url:
        assert fetch_latest(url) == "v0.4.0"
    assert is_older("0.3.1", "v0.4.0")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 200, "did not return a version document"),
        (b'{"edge": "x"}', 200, "did not return a version document"),
        (b'["0.1.0"]', 200, "did not return a version document"),
        (b'{"stable": "banana"}', 200, "unreadable version"),
        (b"{}", 503, "answered HTTP 503"),
    ],
)
def test_fetch_failures_are_one_line(body: bytes, status: int, message: str) -> None:
    with serve_version_document(body, status) as url, pytest.raises(LacewingError) as info:
        fetch_latest(url)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unreachable_source_is_a_lacewing_error() -> None:
    with pytest.raises(LacewingError, match=r"cannot reach http://127\.0\.0\.1:9/"):
        fetch_latest("http://127.0.0.1:9/version.json", timeout=2)
    with pytest.raises(LacewingError, match="not http"):
        fetch_latest("file:///etc/passwd")
