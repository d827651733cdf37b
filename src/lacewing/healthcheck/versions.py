"""Which lacewing release is the latest, and is a version older than it?

`fetch_latest` GETs a small JSON document from the version URL: the `DEFAULT_VERSION_URL`
constant (the GitHub "latest release" of the project, `{"tag_name": "v0.2.0", ...}`), or
`$LACEWING_VERSION_CHECK_URL` when set (a mirror: `{"stable": "0.2.0"}`; both shapes are read).
Nothing is sent but the GET itself. It uses a short
timeout and turns every failure (no network, DNS, HTTP error, bad JSON) into a
`LacewingError` with one line of explanation, which the `lacewing-version` checks report as
a warning: clusters of Raspberry Pis behind NAT without internet are normal.

`parse_version` understands `MAJOR.MINOR.PATCH` with an optional `-pre` or `+local` suffix
(a pre-release sorts before its release); it is enough for our own release numbers and needs no
third-party package.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request

from lacewing.errors import LacewingError

__all__ = [
    "DEFAULT_VERSION_URL",
    "SKIP_ENV",
    "URL_ENV",
    "fetch_latest",
    "is_older",
    "parse_version",
    "skip_requested",
    "version_url",
]

# The project's own release feed (the image lives at ghcr.io/lacewing-mesh/lacewing).
DEFAULT_VERSION_URL = "https://api.github.com/repos/lacewing-mesh/lacewing/releases/latest"
URL_ENV = "LACEWING_VERSION_CHECK_URL"
SKIP_ENV = "LACEWING_SKIP_VERSION_CHECK"
_TIMEOUT = 3.0
_MAX_BYTES = 64 * 1024
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def version_url(env: dict[str, str] | None = None) -> str:
    source = os.environ if env is None else env
    return source.get(URL_ENV) or DEFAULT_VERSION_URL


def skip_requested(env: dict[str, str] | None = None) -> bool:
    source = os.environ if env is None else env
    return source.get(SKIP_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def fetch_latest(url: str, timeout: float = _TIMEOUT) -> str:
    """The latest version (`stable`, or GitHub's `tag_name`) in the JSON document at `url`."""
    if not url.startswith(("http://", "https://")):
        raise LacewingError(f"version URL {url!r} is not http(s)")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(_MAX_BYTES)
    except urllib.error.HTTPError as exc:
        raise LacewingError(f"{url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LacewingError(f"cannot reach {url}: {reason}") from None
    try:
        document = json.loads(body)
        latest = document.get("stable") or document["tag_name"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise LacewingError(f"{url} did not return a version document") from None
    if not isinstance(latest, str) or parse_version(latest) is None:
        raise LacewingError(f"{url} returned an unreadable version {latest!r}")
    return latest


def parse_version(text: str) -> tuple[int, int, int, int, str] | None:
    """A sortable key for `text`, or None when it is not a version number."""
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    # a release sorts after all of its pre-releases
    return (int(major), int(minor), int(patch or 0), 0 if pre else 1, pre or "")


def is_older(version: str, than: str) -> bool:
    """True when `version` is older than `than` (unparseable versions are never older)."""
    a, b = parse_version(version), parse_version(than)
    if a is None or b is None:
        return False
    return a < b
