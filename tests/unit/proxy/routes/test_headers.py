"""Header modifiers and redirects on HTTP/1 heads."""

from __future__ import annotations

import pytest

from lacewing.core.routes import HeaderModifier, PathMatch, Redirect
from lacewing.proxy.routes.headers import location, modify_head, redirect_response

HEAD = (
    b"GET /a HTTP/1.1\r\nHost: web\r\nX-Keep: 1\r\nx-drop: 2\r\nX-Set: old\r\nx-set: old2\r\n\r\n"
)


def test_set_add_remove_keep_the_other_lines_as_they_were() -> None:
    mod = HeaderModifier(set=(("X-Set", "new"),), add=(("X-Add", "a"),), remove=("X-DROP",))
    assert modify_head(HEAD, mod) == (
        b"GET /a HTTP/1.1\r\nHost: web\r\nX-Keep: 1\r\nX-Set: new\r\nX-Add: a\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("redirect", "host", "target", "matched", "expected"),
    [
        (Redirect(full_path="/new"), "web.shop", "/old?q=1", PathMatch("Exact", "/old"),
         "http://web.shop/new?q=1"),
        (Redirect(prefix="/v2"), "web:8080", "/v1/users", PathMatch("PathPrefix", "/v1"),
         "http://web:8080/v2/users"),
        (Redirect(scheme="https"), "web:8080", "/x", PathMatch("PathPrefix", "/"),
         "https://web/x"),
        (Redirect(hostname="other", port=9000), "web", "/x", PathMatch("PathPrefix", "/"),
         "http://other:9000/x"),
    ],
)  # fmt: skip
def test_redirect_locations(
    redirect: Redirect, host: str, target: str, matched: PathMatch, expected: str
) -> None:
    assert location(redirect, host, target, matched) == expected


def test_a_redirect_is_a_complete_response() -> None:
    assert redirect_response(301, "http://a/b") == (
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: http://a/b\r\nContent-Length: 0\r\n\r\n"
    )


def test_the_proxys_own_keep_alive_answer() -> None:
    from lacewing.proxy.routes.headers import own_response

    assert own_response(404, "no route matches this request") == (
        b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\n"
        b"l5d-proxy-error: no route matches this request\r\ncontent-length: 30\r\n\r\n"
        b"no route matches this request\n"
    )
