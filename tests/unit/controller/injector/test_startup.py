"""The injector's first read of lacewing-config waits for an API not reachable yet, not more."""

from __future__ import annotations

import io

import pytest

from lacewing.cli.commands.controller_injector import _first_values
from lacewing.cli.context import Output
from lacewing.errors import ClusterError, ClusterUnreachable


class Admission:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    async def values(self) -> object:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return object()


async def test_an_api_that_comes_up_is_waited_for() -> None:
    unreachable = ClusterUnreachable("cannot reach the Kubernetes API at https://127.0.0.1:6443")
    admission = Admission([unreachable, unreachable])
    err = io.StringIO()
    await _first_values(admission, Output(out=io.StringIO(), err=err), wait=5.0)
    assert admission.calls == 3
    assert err.getvalue().count("waiting for the Kubernetes API: cannot reach") == 2


async def test_a_refusal_fails_at_once_and_waiting_is_bounded() -> None:
    refused = Admission([ClusterError('ConfigMap "lacewing-config" was not found')])
    with pytest.raises(ClusterError, match="lacewing-config"):
        await _first_values(refused, Output(out=io.StringIO(), err=io.StringIO()), wait=5.0)
    assert refused.calls == 1
    down = Admission([ClusterUnreachable("down")] * 10)
    with pytest.raises(ClusterUnreachable):
        await _first_values(down, Output(out=io.StringIO(), err=io.StringIO()), wait=0.5)
    assert 1 < down.calls < 10
