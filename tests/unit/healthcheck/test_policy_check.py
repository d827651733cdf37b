"""`the policy API answers`: each answer of the policy pod's admin probe, and no answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.unit.healthcheck.fakes import FakeCluster, make_facts

from lacewing.errors import ClusterError
from lacewing.healthcheck.checks.policy import policy_api_answers


@dataclass
class ProxiedCluster(FakeCluster):
    """A FakeCluster whose pods/proxy answers `answer` (or raises it)."""

    answer: str | Exception = ""
    asked: list[tuple[str, str, int, str]] = field(default_factory=list)

    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str:
        self.asked.append((namespace, pod, port, path))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _pod(ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "lacewing-policy-abc",
            "namespace": "lacewing",
            "labels": {
                "lacewing.io/control-plane-ns": "lacewing",
                "lacewing.io/control-plane-component": "policy",
            },
        },
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def _run(answer: str | Exception, ready: bool = True) -> tuple[Any, ProxiedCluster]:
    cluster = ProxiedCluster(answer=answer)
    cluster.add(_pod(ready))
    return policy_api_answers(make_facts(cluster)), cluster


def test_a_policy_for_its_own_pod_passes_and_is_asked_on_the_admin_port() -> None:
    answer = {"type": "POLICY", "server": {"kind": "default", "name": "all-unauthenticated"}}
    outcome, cluster = _run(json.dumps(answer))
    assert outcome.passed
    assert cluster.asked == [("lacewing", "lacewing-policy-abc", 9990,
                              "/v1/inbound-probe?namespace=lacewing&pod=lacewing-policy-abc"
                              "&port=8090")]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "error", "hint"),
    [
        (ClusterError("the server is currently unable to handle the request"),
         "did not answer on its admin port 9990", "lacewing install --crds"),
        (json.dumps({"type": "NOT_FOUND", "error": "pod lacewing/lacewing-policy-abc"}),
         "does not know its own pod lacewing/lacewing-policy-abc",
         "kubectl auth can-i list pods --as system:serviceaccount:lacewing:lacewing-policy"),
        ("<html>hello</html>", "answered '<html>hello</html>', not a policy", "this version"),
    ],
)  # fmt: skip
def test_every_other_answer_fails_with_what_to_do(
    answer: str | Exception, error: str, hint: str
) -> None:
    outcome, _ = _run(answer)
    assert not outcome.passed
    assert error in outcome.error
    assert outcome.hint is not None and hint in outcome.hint


def test_without_a_ready_policy_pod_there_is_nothing_to_ask() -> None:
    outcome, cluster = _run("{}", ready=False)
    assert not outcome.passed and "no ready" in outcome.error and cluster.asked == []
