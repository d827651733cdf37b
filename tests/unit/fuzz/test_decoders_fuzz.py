"""Fuzzing the decoders of what arrives over the network besides HTTP/1 bytes.

- protocol detection: any prefix gives an answer or asks for more, and an answer never
  changes as more bytes arrive;
- destination's stream events and identity's certify bodies: any JSON value is either
  decoded or refused with the one error each promises (ValueError / a 4xx result);
- the injector's admission webhook: any request body gets a reply, never an exception.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lacewing.controller.identity.service import IdentityService
from lacewing.controller.injector.admission import Admission
from lacewing.core.discovery import event_from_dict
from lacewing.proxy.detect import MAX_PREFIX, detect

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "endpoints",
                    "exists",
                    "address",
                    "port",
                    "weight",
                    "identity",
                    "opaque",
                    "labels",
                    "csr",
                    "token",
                    "x",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@given(st.binary(max_size=2 * MAX_PREFIX), st.binary(max_size=8))
def test_detection_answers_or_waits_and_never_changes_its_mind(prefix: bytes, more: bytes) -> None:
    first = detect(prefix)
    assert detect(prefix, final=True) is not None
    if first is not None:
        assert detect(prefix + more) is first


@given(JSON)
def test_destination_events_decode_or_raise_value_error(data: Any) -> None:
    try:
        event_from_dict(data)
    except ValueError:
        pass


class _Refuses:
    async def validate(self, token: str) -> Any:
        raise AssertionError("a malformed request must be refused before the token is checked")


@given(JSON)
def test_identity_refuses_malformed_certify_bodies_with_a_4xx(body: Any) -> None:
    refuses: Any = _Refuses()
    no_issuer: Any = lambda: None  # noqa: E731  (never reached for malformed bodies)
    service = IdentityService("cluster.local", refuses, no_issuer)
    if isinstance(body, dict) and all(
        isinstance(body.get(k), str) and body.get(k) for k in ("identity", "token", "csr")
    ):
        return  # well-formed fields: the token check would run (tested elsewhere)
    result = asyncio.run(service.certify(body))
    assert 400 <= result.status < 500 and "error" in result.body


class _NoCluster:
    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        return None


@given(st.one_of(st.binary(max_size=64), JSON.map(lambda v: json.dumps(v).encode())))
def test_the_admission_webhook_answers_any_body(body: bytes) -> None:
    admission = Admission(_NoCluster(), "lacewing")
    try:
        reply = asyncio.run(admission.review(body))
    except Exception as exc:  # the only acceptable one: the cluster's config is missing
        assert "not found" in str(exc), exc
        return
    assert reply is not None
