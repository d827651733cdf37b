"""Route status: one entry per Service parent, others' entries kept, written only on change."""

from __future__ import annotations

from typing import Any

from lacewing.controller.destination.route_status import (
    CONTROLLER_NAME,
    RouteStatusReporter,
    parent_statuses,
)
from lacewing.controller.destination.routes import Verdict

KIND = "HTTPRoute.policy.lacewing.io"
OK = Verdict("shop", "r", True, "Accepted", "route accepted")
BAD = Verdict("shop", "r", False, "BackendNotFound", "Service shop/x does not exist")


def obj(parents: list[dict[str, Any]] | None = None, version: str = "1") -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": "policy.lacewing.io/v1beta1", "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "shop", "generation": 3,
                     "resourceVersion": version},
        "spec": {"parentRefs": [{"kind": "Service", "name": "web", "port": 80},
                                {"kind": "Gateway", "name": "gw"}]},
    }  # fmt: skip
    if parents is not None:
        out["status"] = {"parents": parents}
    return out


def test_only_service_parents_get_conditions_with_generation_and_reason() -> None:
    [entry] = parent_statuses(obj(), BAD, CONTROLLER_NAME, 0.0)
    assert entry["parentRef"] == {"kind": "Service", "name": "web", "port": 80}
    assert entry["controllerName"] == CONTROLLER_NAME
    got = {c["type"]: (c["status"], c["reason"], c["observedGeneration"])
           for c in entry["conditions"]}  # fmt: skip
    assert got == {"Accepted": ("False", "BackendNotFound", 3),
                   "ResolvedRefs": ("False", "BackendNotFound", 3)}  # fmt: skip
    assert entry["conditions"][0]["lastTransitionTime"] == "1970-01-01T00:00:00Z"
    gateway_only = obj()
    gateway_only["spec"]["parentRefs"] = [{"kind": "Gateway", "name": "gw"}]
    assert parent_statuses(gateway_only, OK, CONTROLLER_NAME, 0.0) == []


def test_transition_times_move_only_when_a_condition_flips() -> None:
    first = parent_statuses(obj(), BAD, CONTROLLER_NAME, 0.0)
    same = parent_statuses(obj(first), BAD, CONTROLLER_NAME, 100.0)
    assert same == first
    flipped = parent_statuses(obj(first), OK, CONTROLLER_NAME, 100.0)
    assert flipped[0]["conditions"][0]["lastTransitionTime"] == "1970-01-01T00:01:40Z"


def test_the_reporter_writes_on_change_once_per_version_and_keeps_other_controllers() -> None:
    sent: list[tuple[str, str, str, dict[str, Any]]] = []
    report = RouteStatusReporter(lambda *a: sent.append(a), clock=lambda: 0.0)
    theirs = {"parentRef": {"kind": "Gateway", "name": "gw"}, "controllerName": "x.io/gw"}
    report(KIND, obj([theirs]), BAD)
    report(KIND, obj([theirs]), BAD)  # the watch has not caught up: no second write
    assert len(sent) == 1
    kind, ns, name, status = sent[0]
    assert (kind, ns, name) == (KIND, "shop", "r") and status["parents"][0] == theirs
    report(KIND, obj(status["parents"], version="2"), BAD)  # what was written came back
    assert len(sent) == 1
    report(KIND, obj(status["parents"], version="2"), OK)  # the verdict changed
    assert len(sent) == 2 and sent[1][3]["parents"][1]["conditions"][0]["status"] == "True"
    report(KIND, obj([theirs], version="3"), BAD)  # someone wiped ours: written again
    assert len(sent) == 3


def test_a_service_with_bad_annotations_gets_no_default_route_and_one_reason() -> None:
    from lacewing.controller.destination import Service, ServicePort
    from lacewing.controller.destination.routes import accept

    port = (ServicePort(80, 8080, "http"),)
    good = Service("web", "shop", "10.43.0.10", port,
                   annotations={"retry.lacewing.io/http": "5xx"})  # fmt: skip
    bad = Service("api", "shop", "10.43.0.11", port,
                  annotations={"timeout.lacewing.io/request": "soon"})  # fmt: skip
    docs, verdicts = accept([], [good, bad])
    assert [(d.namespace, d.name, d.parents) for d in docs] == [
        ("shop", "service-default", (("shop", "web", None),))]  # fmt: skip
    [verdict] = verdicts
    assert (verdict.kind, verdict.name, verdict.accepted, verdict.reason) == (
        "Service", "api", False, "UnsupportedValue")  # fmt: skip
    assert "timeout.lacewing.io/request" in verdict.message


def test_a_route_inherits_its_services_annotations_unless_together_they_do_not_parse() -> None:
    import json

    from lacewing.controller.destination import Service, ServicePort
    from lacewing.controller.destination.routes import accept

    notes = {"retry.lacewing.io/http": "5xx", "timeout.lacewing.io/request": "1s"}
    web = Service("web", "shop", "10.43.0.10", (ServicePort(80, 8080, "http"),),
                  annotations=notes)  # fmt: skip

    def served(own: dict[str, str]) -> dict[str, str]:
        route = {"apiVersion": "policy.lacewing.io/v1beta1", "kind": "HTTPRoute",
                 "metadata": {"name": "r", "namespace": "shop", "annotations": own},
                 "spec": {"parentRefs": [{"kind": "Service", "name": "web"}]}}  # fmt: skip
        docs, verdicts = accept([route], [web])
        assert [v.accepted for v in verdicts] == [True] and [d.name for d in docs] == ["r"]
        return dict(json.loads(docs[0].text)["metadata"]["annotations"])

    assert served({"timeout.lacewing.io/request": "2s"}) == {
        "retry.lacewing.io/http": "5xx", "timeout.lacewing.io/request": "2s"}  # fmt: skip
    # Alone, a limit of 11 is inert (no statuses to retry); with the Service's it is out of
    # range: the route is served as it is, never broken by its Service's defaults.
    assert served({"retry.lacewing.io/limit": "11"}) == {"retry.lacewing.io/limit": "11"}
