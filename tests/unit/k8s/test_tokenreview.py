"""The TokenReview verdict: what the API server's answer proves, shapes checked."""

from __future__ import annotations

from typing import Any

import pytest

from lacewing.k8s.tokenreview import interpret

SA = "system:serviceaccount:shop:web"
OURS = ["identity.lacewing.io"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ({"authenticated": True, "audiences": OURS, "user": {"username": SA}}, ""),
        ({"authenticated": True, "user": {"username": SA}}, ""),  # servers that omit audiences
        ({"error": "token expired"}, "token expired"),
        ({"authenticated": False}, "did not authenticate"),
        ({"authenticated": "yes", "user": {"username": SA}}, "did not authenticate"),
        ({"authenticated": True, "audiences": ["api"], "user": {"username": SA}}, "audience"),
        ({"authenticated": True, "user": {"username": "alice"}}, "not a service account"),
        # Found by tests/unit/fuzz/test_identity_fuzz.py: each raised (TypeError or
        # AttributeError) instead of refusing.
        ({"authenticated": True, "audiences": 5, "user": {"username": SA}}, "audience"),
        ({"authenticated": True, "user": ["x"]}, "not a service account"),
        (["x"], "without a status"),
    ],
)
def test_a_review_is_accepted_only_when_it_proves_a_service_account_for_us(
    status: Any, error: str
) -> None:
    review = interpret({"status": status})
    assert review.authenticated is (error == "")
    assert error in review.error
    if review.authenticated:
        assert review.username == SA
