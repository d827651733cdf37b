"""Header classification: any case, remembered per spelling, with a bounded memo."""

from __future__ import annotations

import pytest

from lacewing.proxy.http1 import head
from lacewing.proxy.http1.head import (
    CONNECTION,
    CONTENT_LENGTH,
    HOST,
    TRANSFER_ENCODING,
    header_kind,
)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        (b"Host", HOST),
        (b"HOST", HOST),
        (b"cOnNeCtIoN", CONNECTION),
        (b"Transfer-Encoding", TRANSFER_ENCODING),
        (b"content-length", CONTENT_LENGTH),
        (b"Server", 0),  # same length as "expect", not a kind
        (b"X-Request-Id", 0),
    ],
)
def test_names_are_classified_in_any_case_and_remembered(name: bytes, kind: int) -> None:
    assert header_kind(name) == kind
    assert head.KIND_CACHE.get(name) == kind, "the next lookup is one dict hit"


def test_the_memo_stops_growing_at_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(head, "KIND_CACHE", {})
    monkeypatch.setattr(head, "KIND_CACHE_MAX", 3)
    names = [b"X-Junk-%d" % i for i in range(10)] + [b"HoSt"]
    assert [header_kind(n) for n in names] == [0] * 10 + [HOST], "past the cap, still right"
    assert len(head.KIND_CACHE) == 3
