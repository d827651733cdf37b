"""Does the policy controller answer? Ask it about its own pod, without a mesh certificate.

The policy API (8090) serves only clients with a mesh certificate, which `lacewing check`
does not hold. So the check asks the policy pod's plaintext admin port (9990, through the
API server's `pods/proxy`, as `diagnostics policy` reaches proxies) for
`/v1/inbound-probe?namespace=NS&pod=POD&port=8090`: the policy the stream would send for
that port, summed up (`lacewing.controller.policy.server`). A `POLICY` answer proves what a
proxy relies on: the controller runs, has listed every kind (it compiles nothing before),
and knows the pods (it found its own). `NOT_FOUND` means its Pod watch misses pods; a 503,
that a watch never listed (RBAC, a missing CRD); no answer, that it is not serving.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from lacewing.errors import LacewingError
from lacewing.healthcheck.checks import installed
from lacewing.healthcheck.facts import Facts
from lacewing.healthcheck.model import Check, Outcome
from lacewing.install import sidecar

__all__ = ["POLICY_API_ANSWERS", "PROBE_PATH", "policy_api_answers"]

PROBE_PATH = "/v1/inbound-probe"
COMPONENT = "policy"
LOGS = "kubectl -n {namespace} logs deploy/lacewing-policy -c policy"


def _ready(pod: dict[str, object]) -> bool:
    status = pod.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions or []
    )


def policy_api_answers(facts: Facts) -> Outcome:
    ns = facts.options.namespace
    pods = [
        p
        for p in installed.control_plane_pods(facts)
        if ((p.get("metadata") or {}).get("labels") or {}).get(installed.COMPONENT_LABEL)
        == COMPONENT
        and _ready(p)
    ]
    if not pods:
        return Outcome.fail('no ready "lacewing-policy" pod to ask')
    name = str(pods[0]["metadata"]["name"])
    port = sidecar.CONTROL_PLANE_PORTS[COMPONENT]
    query = urlencode({"namespace": ns, "pod": name, "port": port})
    admin = sidecar.CONTROLLER_ADMIN_PORT
    try:
        text = facts.pod_text(ns, name, admin, f"{PROBE_PATH}?{query}")
    except LacewingError as exc:
        return Outcome.fail(
            f"the policy controller in pod {name} did not answer on its admin port {admin}: {exc}",
            hint=f"{LOGS}; it answers once every watched kind is listed (its RBAC, the"
            " policy CRDs: lacewing install --crds | kubectl apply -f -)",
        )
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind == "POLICY":
        return Outcome.ok()
    if kind == "NOT_FOUND":
        return Outcome.fail(
            f"the policy controller does not know its own pod {ns}/{name}: proxies asking"
            " about their pods get no policy",
            hint=f"{LOGS} (its Pod watch); kubectl auth can-i list pods"
            f" --as system:serviceaccount:{ns}:lacewing-policy",
        )
    return Outcome.fail(
        f"the policy controller in pod {name} answered {text.strip()[:200]!r}, not a policy",
        hint=f"{LOGS}; is the pod running this version of lacewing?",
    )


POLICY_API_ANSWERS: Check[Facts] = Check(
    "the policy API answers",
    LOGS,
    policy_api_answers,
    retry_deadline=True,
)
