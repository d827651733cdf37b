"""The injection decision: who is skipped and why, and what an injected pod looks like."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from tests.unit.controller.injector.helpers import ENABLED, namespace, pod, values

from lacewing.controller.injector.patch import PodInput, apply_ops, decide, workload_labels
from lacewing.install import sidecar
from lacewing.install.credentials import generate
from lacewing.install.render import render_control_plane
from lacewing.install.sidecar import proxy_container, proxy_init_container
from lacewing.install.values import build_values

SKIPPED = "lacewing.io/inject-skipped"


def _injected(p: PodInput) -> dict[str, Any]:
    decision = decide(p)
    assert decision.injected, decision.message
    return apply_ops(p.pod, decision.ops)


def _containers(obj: dict[str, Any], key: str = "containers") -> list[str]:
    return [c["name"] for c in obj["spec"].get(key, [])]


@pytest.mark.parametrize(
    ("the_pod", "the_ns", "reason"),
    [
        (pod(), namespace("shop"), "injection-not-requested"),
        (pod(annotations={"lacewing.io/inject": "disabled"}), namespace("shop", ENABLED),
         "injection-not-requested"),
        (pod(), namespace("shop", {"lacewing.io/inject": "disabled"}), "injection-not-requested"),
        (pod(annotations=ENABLED, spec={"hostNetwork": True,
                                        "containers": [{"name": "a", "image": "a"}]}),
         namespace("shop"), "host-network"),
        (pod("kube-system", ENABLED), namespace("kube-system"), "system-namespace"),
        (pod("lacewing", ENABLED), namespace("lacewing"), "control-plane-namespace"),
        (pod(annotations={"config.lacewing.io/proxy-cpu-request": "lots"}),
         namespace("shop", ENABLED), "invalid-annotation"),
        (pod(annotations={"lacewing.io/inject": "yes"}), namespace("shop"), "invalid-annotation"),
    ],
)  # fmt: skip
def test_skipped_pods_are_untouched_but_for_the_reason(
    the_pod: dict[str, Any], the_ns: dict[str, Any], reason: str
) -> None:
    decision = decide(PodInput(the_pod, the_ns, values()))
    assert not decision.injected and decision.reason == reason
    after = apply_ops(the_pod, decision.ops)
    assert after["spec"] == the_pod["spec"]
    assert after["metadata"]["annotations"][SKIPPED].startswith(f"{reason}: ")
    rest = {k: v for k, v in after["metadata"]["annotations"].items() if k != SKIPPED}
    assert rest == (the_pod["metadata"].get("annotations") or {})


def test_an_injected_pod_is_skipped_the_second_time() -> None:
    ns = namespace("shop", ENABLED)
    once = _injected(PodInput(pod(), ns, values()))
    decision = decide(PodInput(once, ns, values()))
    assert decision.reason == "already-injected"


def test_injection_uses_the_one_sidecar_definition() -> None:
    v = values()
    after = _injected(PodInput(pod(), namespace("shop", ENABLED), v))
    assert _containers(after) == ["lacewing-proxy", "web"]
    # the one sidecar, told the pod's container ports (to fetch their policy as it starts)
    assert after["spec"]["containers"][0] == sidecar.proxy_container(v, inbound_ports="80")
    assert after["spec"]["initContainers"] == [sidecar.proxy_init_container(v)]
    assert after["spec"]["volumes"] == sidecar.proxy_volumes(v)
    labels = after["metadata"]["labels"]
    assert labels["lacewing.io/proxy-version"] == v.image.tag
    assert labels["lacewing.io/control-plane-ns"] == "lacewing"
    assert labels["app"] == "web"
    assert after["metadata"]["annotations"]["lacewing.io/proxy-version"] == v.image.tag


def test_install_and_injection_give_the_same_proxy() -> None:
    """The control plane's own pods (install) and injected pods share one sidecar spec."""
    v = build_values(overrides={"proxy": {"logLevel": "debug", "opaquePorts": "5432"}})
    docs = render_control_plane(v, generate(v.namespace, v.identity.trust_domain))
    injected = _injected(PodInput(pod("shop"), namespace("shop", ENABLED), v))
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        component = deployment["metadata"]["labels"]["lacewing.io/control-plane-component"]
        pod_spec = deployment["spec"]["template"]["spec"]
        installed = next(c for c in pod_spec["containers"] if c["name"] == "lacewing-proxy")
        # the one spec; a control-plane pod reaches its own controller on localhost and its
        # proxy-init skips the controller's serving port (sidecar.CONTROL_PLANE_SKIP_INBOUND)
        assert installed == proxy_container(v, component)
        assert pod_spec["initContainers"][0] == proxy_init_container(v, component)
        if component == "proxy-injector":
            ports = [e for e in injected["spec"]["containers"][0]["env"]
                     if e["name"] != "LACEWING_PROXY_INBOUND_PORTS"]  # fmt: skip
            assert {**injected["spec"]["containers"][0], "env": ports} == installed
    assert injected["spec"]["containers"][0] == proxy_container(v, inbound_ports="80")
    assert injected["spec"]["initContainers"][0] == proxy_init_container(v)


def test_annotations_override_the_install_values() -> None:
    annotations = {
        "config.lacewing.io/proxy-cpu-request": "200m",
        "config.lacewing.io/proxy-memory-limit": "128Mi",
        "config.lacewing.io/proxy-log-level": "debug",
        "config.lacewing.io/skip-inbound-ports": "9000,9100-9102",
        "config.lacewing.io/skip-outbound-ports": "5432",
    }
    ns = namespace("shop", {**ENABLED, "config.lacewing.io/opaque-ports": "3306"})
    after = _injected(PodInput(pod(annotations=annotations), ns, values()))
    expected = build_values(
        overrides={
            "proxy": {
                "logLevel": "debug",
                "opaquePorts": "3306",
                "resources": {"cpuRequest": "200m", "memoryLimit": "128Mi"},
            },
            "proxyInit": {"ignoreInboundPorts": "9000,9100-9102", "ignoreOutboundPorts": "5432"},
        }
    )
    assert after["spec"]["containers"][0] == sidecar.proxy_container(expected, inbound_ports="80")
    init_args = after["spec"]["initContainers"][0]["args"]
    assert init_args[init_args.index("--inbound-ports-to-ignore") + 1] == "4190,4191,9000,9100-9102"
    assert init_args[init_args.index("--outbound-ports-to-ignore") + 1] == "5432"
    # the namespace's configuration is recorded on the pod, for the other controllers
    assert after["metadata"]["annotations"]["config.lacewing.io/opaque-ports"] == "3306"


def test_pod_annotation_wins_over_namespace() -> None:
    ns = namespace("shop", {**ENABLED, "config.lacewing.io/proxy-log-level": "warn"})
    the_pod = pod(annotations={"config.lacewing.io/proxy-log-level": "error"})
    after = _injected(PodInput(the_pod, ns, values()))
    env = {e["name"]: e.get("value") for e in after["spec"]["containers"][0]["env"]}
    assert env["LACEWING_PROXY_LOG_LEVEL"] == "error"


def test_native_sidecar_by_annotation_and_by_default() -> None:
    native = {"config.alpha.lacewing.io/proxy-enable-native-sidecar": "true"}
    after = _injected(PodInput(pod(annotations=native), namespace("shop", ENABLED), values()))
    assert _containers(after) == ["web"]
    assert _containers(after, "initContainers") == ["lacewing-init", "lacewing-proxy"]
    assert after["spec"]["initContainers"][1]["restartPolicy"] == "Always"
    off = {"config.alpha.lacewing.io/proxy-enable-native-sidecar": "false"}
    p = PodInput(pod(annotations=off), namespace("shop", ENABLED), values(), True)
    assert _containers(_injected(p)) == ["lacewing-proxy", "web"]
    p = PodInput(pod(), namespace("shop", ENABLED), values(), native_sidecar_default=True)
    assert _containers(_injected(p), "initContainers") == ["lacewing-init", "lacewing-proxy"]


def test_existing_init_containers_volumes_and_escaped_keys() -> None:
    spec = {
        "initContainers": [{"name": "migrate", "image": "m"}],
        "containers": [{"name": "web", "image": "w"}],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }
    the_pod = pod(annotations={**ENABLED, "a~b/c": "x"}, spec=spec)
    decision = decide(PodInput(the_pod, namespace("shop"), values()))
    paths = [op["path"] for op in decision.ops]
    assert "/metadata/annotations/lacewing.io~1proxy-version" in paths
    after = apply_ops(the_pod, decision.ops)
    assert _containers(after, "initContainers") == ["lacewing-init", "migrate"]
    names = [v["name"] for v in after["spec"]["volumes"]]
    assert names == ["data", "lacewing-identity-token", "lacewing-init-xtables-lock"]
    assert after["metadata"]["annotations"]["a~b/c"] == "x"


def test_trust_anchors_are_inlined_outside_the_control_plane_namespace() -> None:
    v = build_values(overrides={"identity": {"trustAnchorsPem": "PEM-TEXT"}})
    after = _injected(PodInput(pod(), namespace("shop", ENABLED), v))
    env = {e["name"]: e for e in after["spec"]["containers"][0]["env"]}
    assert env["LACEWING_IDENTITY_TRUST_ANCHORS"] == {
        "name": "LACEWING_IDENTITY_TRUST_ANCHORS",
        "value": "PEM-TEXT",
    }


def test_workload_labels_from_owner() -> None:
    the_pod = pod(annotations=ENABLED)
    the_pod["metadata"]["labels"]["pod-template-hash"] = "5d9f8c"
    the_pod["metadata"]["ownerReferences"] = [
        {"kind": "ReplicaSet", "name": "web-5d9f8c", "controller": True, "uid": "1",
         "apiVersion": "apps/v1"}
    ]  # fmt: skip
    labels = workload_labels(PodInput(the_pod, namespace("shop"), values()))
    assert labels == {"lacewing.io/workload-ns": "shop", "lacewing.io/proxy-deployment": "web"}
    the_pod["metadata"]["ownerReferences"][0].update(kind="StatefulSet", name="db")
    labels = workload_labels(PodInput(the_pod, namespace("shop"), values()))
    assert labels["lacewing.io/proxy-statefulset"] == "db"


@pytest.mark.parametrize("version", ["1.28", "1.34"])
@pytest.mark.parametrize("native", [False, True])
def test_patched_pod_is_valid_kubernetes(version: str, native: bool) -> None:
    v = build_values(
        overrides={"identity": {"trustAnchorsPem": "-----BEGIN CERTIFICATE-----\n..."}}
    )
    spec = {
        "initContainers": [{"name": "migrate", "image": "m"}],
        "containers": [{"name": "web", "image": "w"}],
    }
    p = PodInput(pod(spec=spec), namespace("shop", ENABLED), v, native_sidecar_default=native)
    after = _injected(p)
    kubernetes_validate.validate(copy.deepcopy(after), version, strict=True)


def test_a_pod_without_containers_is_refused() -> None:
    from lacewing.errors import UsageError

    with pytest.raises(UsageError):
        decide(PodInput({"metadata": {}, "spec": {}}, None, values()))


def test_the_proxy_is_told_the_pods_tcp_container_ports_once_each() -> None:
    spec = {
        "containers": [
            {"name": "a", "ports": [{"containerPort": 8080}, {"containerPort": 53,
                                                              "protocol": "UDP"}]},
            {"name": "b", "ports": [{"containerPort": 9090}, {"containerPort": 8080}]},
            {"name": "c"},
        ]
    }  # fmt: skip
    after = _injected(PodInput(pod(spec=spec), namespace("shop", ENABLED), values()))
    env = {e["name"]: e.get("value") for e in after["spec"]["containers"][0]["env"]}
    assert env["LACEWING_PROXY_INBOUND_PORTS"] == "8080,9090"
